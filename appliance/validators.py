"""Validators shared by forms and API serializers."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError


def is_hostname(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return all(
        0 < len(label) <= 63
        and label.replace("-", "").isalnum()
        and label.isascii()
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    )


def validate_host(value: str) -> str:
    """A host name or an IPv4/IPv6 address, normalised; raises ValidationError otherwise."""
    host = value.strip().lower().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if not host or len(host) > 253 or not is_hostname(host):
        raise ValidationError(
            f"“{value}” is not a host name or IP address. Enter a name such as "
            "backup.example.com or an address such as 192.0.2.20."
        )
    return host.rstrip(".")
