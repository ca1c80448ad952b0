"""The version of the software this site runs, derived from git by setuptools-scm.

A tag vX.Y.Z is that release; N commits after it the version reads
X.Y.(Z+1).devN+gHASH (HASH: the commit). Building the package (a wheel, an
install, `make install`'s editable one) records the version in the package's
metadata, which is where an installed site reads it. Where there is no git to
ask, as in a Docker build, SETUPTOOLS_SCM_PRETEND_VERSION gives it (README,
"Versions").

A git checkout may have moved on since its editable install recorded a
version: when the recorded one does not name the commit checked out,
setuptools-scm is asked again. That takes about a second, so the answer is kept
for that commit in var/version of the checkout, for the processes after.
"""

from __future__ import annotations

import os
import subprocess
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "appliance-failover"
UNKNOWN_VERSION = "0+unknown"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
GIT_TIMEOUT_SECONDS = 10
# In a checkout: "<commit> <version>", the last version setuptools-scm gave.
KEPT = "var/version"


def installed_version() -> str:
    """The version the package's metadata records, or "0+unknown" when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


def checked_out_commit(root: Path = SOURCE_ROOT) -> str | None:
    """The commit of the git checkout the code runs from, or None outside one."""
    if not (root / ".git").exists() or not (root / "pyproject.toml").exists():
        return None
    try:
        found = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = found.stdout.strip()
    return commit if found.returncode == 0 and commit else None


def names_commit(version: str, commit: str) -> bool:
    """Whether `version` (…+gHASH…) was made from `commit`; a tagged release names none."""
    local = version.partition("+")[2]
    hashes = [part[1:] for part in local.split(".") if part.startswith("g")]
    return any(commit.startswith(part) for part in hashes if len(part) >= 7)


def software_version(root: Path = SOURCE_ROOT) -> str:
    """This code's version: the installed one, unless a checkout has moved past it."""
    recorded = installed_version()
    commit = checked_out_commit(root)
    if commit is None or names_commit(recorded, commit):
        return recorded
    kept = root / KEPT
    try:
        kept_commit, _, kept_version = kept.read_text().strip().partition(" ")
    except OSError:
        kept_commit, kept_version = "", ""
    if kept_commit == commit and kept_version:
        return kept_version
    try:
        # Deferred: a test and build tool, slow to import, and only a checkout needs it.
        import setuptools_scm
    except ImportError:
        return recorded
    try:
        found = setuptools_scm.get_version(root=str(root))
    except (LookupError, OSError):
        return recorded
    try:
        kept.parent.mkdir(exist_ok=True)
        partial = kept.with_name(f"{kept.name}.{os.getpid()}")
        partial.write_text(f"{commit} {found}\n")
        partial.replace(kept)
    except OSError:
        pass  # A read-only checkout asks again next time.
    return found


# Read once: the code cannot change version without the process restarting.
SOFTWARE_VERSION = software_version()
