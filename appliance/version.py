"""The version of the software this site runs, as its installed package metadata says."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "appliance-failover"
UNKNOWN_VERSION = "0+unknown"


def installed_version() -> str:
    """The installed distribution's version, or "0+unknown" when running from a bare checkout."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


# Read once: the code cannot change version without the process restarting.
SOFTWARE_VERSION = installed_version()
