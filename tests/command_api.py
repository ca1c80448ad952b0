"""Reading the Command API's answers as BeyondTrust's clients do, each checked against its schema.

Clients of BeyondTrust's Command API read the flat documents in two ways: with
xmltodict and namespace processing that maps the Command API's namespace away
(`doc["health_check"]["success"]`, the text of `doc["health_check"]["appliance"]`),
or with ElementTree and a namespace map (`root.findtext("bt:success", NS)`). Every
answer read here is first validated against the published XML Schema
(/api/command.xsd) with a real validator (xmlschema).
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import xmlschema
import xmltodict

NAMESPACE = "http://www.beyondtrust.com/namespaces/API/command"
NS = {"bt": NAMESPACE}
SCHEMA_FILE = Path(__file__).resolve().parent.parent / "failover" / "api" / "command.xsd"
HEALTH_CHECK_ORDER = [
    "appliance",
    "version",
    "success",
    "error_message",
    "failover_role",
    "enabled_shared_ips",
    "last_data_sync_time",
    "last_data_sync_status",
]
ROLE_CHANGED = "Successfully changed role."
SYNC_STARTED = "Successfully started data sync. Role change will occur upon successful completion."


@functools.cache
def schema(text: str | None = None) -> xmlschema.XMLSchema:
    """The Command API's schema: the published text when given, else the file in the tree."""
    return xmlschema.XMLSchema(text if text is not None else SCHEMA_FILE.read_text())


def valid(body: bytes, schema_text: str | None = None) -> bytes:
    """The body, after checking it against the schema (raises with the reason when invalid)."""
    schema(schema_text).validate(body)
    return body


def as_dict(body: bytes, schema_text: str | None = None) -> dict[str, Any]:
    """xmltodict with the Command API's namespace mapped away, as one public client reads it."""
    return xmltodict.parse(
        valid(body, schema_text), process_namespaces=True, namespaces={NAMESPACE: None}
    )


def as_tree(body: bytes, schema_text: str | None = None) -> ET.Element:
    """ElementTree, read with the namespace map {"bt": ...}, as another client reads it."""
    return ET.fromstring(valid(body, schema_text))


def children(root: ET.Element) -> list[str]:
    """The names of the root's children, in order, without the namespace."""
    prefix = f"{{{NAMESPACE}}}"
    assert all(child.tag.startswith(prefix) for child in root), [c.tag for c in root]
    return [child.tag.removeprefix(prefix) for child in root]


def text_of(value: str | dict | None) -> str:
    """An element's text as xmltodict gives it: the string, or "#text" beside attributes (the
    root carries the namespace declaration, which xmltodict lists as "@xmlns")."""
    if isinstance(value, dict):
        return value.get("#text", "")
    return value or ""


def error_text(body: bytes, schema_text: str | None = None) -> str:
    """The reason of an `<error>` answer (checked against the schema)."""
    doc = as_dict(body, schema_text)
    assert list(doc) == ["error"], doc
    return text_of(doc["error"])


def success_text(body: bytes, schema_text: str | None = None) -> str:
    """The text of a `<success>` answer (checked against the schema)."""
    doc = as_dict(body, schema_text)
    assert list(doc) == ["success"], doc
    return text_of(doc["success"])
