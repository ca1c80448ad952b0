"""The Command API's XML, in the shape of BeyondTrust's Command API, and its DRF renderer.

Documents are built with ElementTree, so names and messages are always escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from django.utils import timezone
from rest_framework.renderers import BaseRenderer

from failover.health import SiteHealth


def health_check_element(health: SiteHealth) -> ET.Element:
    """`<health_check><appliance id="...">...</appliance></health_check>`."""
    root = ET.Element("health_check")
    appliance = ET.SubElement(root, "appliance", id=health.appliance_id)
    ET.SubElement(appliance, "version").text = health.version
    ET.SubElement(appliance, "success").text = "1" if health.success else "0"
    ET.SubElement(appliance, "error_message").text = health.error_message
    ET.SubElement(appliance, "failover_role").text = health.failover_role
    shared_ips = ET.SubElement(appliance, "enabled_shared_ips")
    for address in health.enabled_shared_ips:
        ET.SubElement(shared_ips, "ip").text = address
    synced = ET.SubElement(appliance, "last_data_sync_time")
    if health.last_data_sync_time is not None:
        synced.set("ts", str(int(health.last_data_sync_time.timestamp())))
        synced.text = timezone.localtime(health.last_data_sync_time).isoformat()
    ET.SubElement(appliance, "last_data_sync_status").text = health.last_data_sync_status
    return root


def error_element(message: str) -> ET.Element:
    """`<error>message</error>`, the body of every refused command."""
    element = ET.Element("error")
    element.text = message
    return element


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
        ET.indent(element)
        return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def _error_text(data: Any) -> str:
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])
    return "" if data is None else str(data)
