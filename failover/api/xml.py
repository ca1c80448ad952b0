"""The Command API's XML, in the shape of BeyondTrust's Command API, and its DRF renderer.

Every document lives in the Command API's namespace (declared as the default
namespace on its root, so clients that strip or map it read plain element names)
and follows the schema published at /api/command.xsd (command.xsd beside this
module). Documents are built with ElementTree, so names and messages are always
escaped; the renderer declares the namespace.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rest_framework.renderers import BaseRenderer

from failover.health import SiteHealth

# The namespace of BeyondTrust's Command API answers, which its clients strip or map.
NAMESPACE = "http://www.beyondtrust.com/namespaces/API/command"
SCHEMA_PATH = Path(__file__).with_name("command.xsd")


def _child(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def health_check_element(health: SiteHealth) -> ET.Element:
    """`<health_check>`: flat, in BeyondTrust's order, leaving out what does not apply.

    `error_message` only when a check failed; `enabled_shared_ips` only when this
    site holds an address; the last data sync only in a relationship (and its time
    only once a sync ended); continuous replication's lag only when it is known. A
    site whose database is down cannot tell whether it is paired: it reports the role
    `unknown` and the sync status `unknown`.
    """
    root = ET.Element("health_check")
    _child(root, "appliance", health.appliance, id=health.appliance_id)
    _child(root, "version", health.version)
    _child(root, "success", "1" if health.success else "0")
    if not health.success:
        _child(root, "error_message", health.error_message)
    _child(root, "failover_role", health.failover_role)
    if health.enabled_shared_ips:
        shared_ips = ET.SubElement(root, "enabled_shared_ips")
        for address in health.enabled_shared_ips:
            _child(shared_ips, "ip", address)
    if health.failover_configured is not False:
        synced_at = health.last_data_sync_time
        if synced_at is not None:
            _child(
                root,
                "last_data_sync_time",
                synced_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                ts=str(int(synced_at.timestamp())),
            )
        _child(root, "last_data_sync_status", health.last_data_sync_status)
    lag = health.replication
    if lag and lag.get("changes_behind") is not None:
        # Continuous replication's lag, after BeyondTrust's elements (clients that read
        # those by name are not disturbed by more).
        _child(root, "replication_changes_behind", str(lag["changes_behind"]))
        _child(root, "replication_seconds_behind", f"{lag['seconds_behind'] or 0:.3f}")
        _child(root, "replication_connected", "1" if lag["connected"] else "0")
    return root


def success_element(message: str) -> ET.Element:
    """`<success>message</success>`: a command that did (or started) what it was asked."""
    element = ET.Element("success")
    element.text = message
    return element


def error_element(message: str) -> ET.Element:
    """`<error>message</error>`, the body of every refused command."""
    element = ET.Element("error")
    element.text = message
    return element


def schema_text() -> str:
    return SCHEMA_PATH.read_text(encoding="utf-8")


class XMLRenderer(BaseRenderer):
    """Serialises an ElementTree element; DRF's own error answers become `<error>`.

    DRF answers refusals (401, 403, 405, ...) with `{"detail": "..."}`; those arrive here as
    dictionaries and leave as `<error>...</error>`, so every answer of the Command API is XML.
    """

    media_type = "application/xml"
    format = "xml"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        element = data if isinstance(data, ET.Element) else error_element(_error_text(data))
        # The root declares the default namespace: its unprefixed descendants are in it.
        element.set("xmlns", NAMESPACE)
        ET.indent(element)
        return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def _error_text(data: Any) -> str:
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return "" if data is None else str(data)
