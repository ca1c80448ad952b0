"""An earlier release of this software, built from git, for tests that pair it with this code.

`unpacked(commit)` builds the wheel of that commit (`git archive`, then `pip wheel`,
offline: no build isolation, no dependencies) and unpacks it, as
tests/test_packaging.py does for this checkout. A site runs it with the suite's
Python and dependencies and the release's own code first on PYTHONPATH
(tests/sites.py, `Site(..., release=...)`). Builds are kept under var/releases/,
one folder per commit, so a second run starts at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from tests.sites import ROOT

# The release a pair upgrades from in tests/test_rolling_upgrade.py: the last commit on
# main before sites announced what they speak (failover.compat), whose hello says nothing
# of it, whose sync format is 2 and whose change log is numbered by id. Move it forward
# to the last release when one is cut.
PREVIOUS_RELEASE = "3b32af4f476f355336a9863afa8457fd5e2d0259"
CACHE = ROOT / "var" / "releases"
BUILD_TIMEOUT_SECONDS = 600


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time per commit (parallel test workers may ask together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def unpacked(commit: str = PREVIOUS_RELEASE) -> Path:
    """The folder holding that commit's unpacked wheel (built on first use)."""
    folder = CACHE / commit
    ready = folder / "site"
    with _locked(CACHE / f"{commit}.lock"):
        if not ready.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            _build(commit, folder)
    return ready


def version_of(site: Path) -> str:
    """The version a release's unpacked wheel records."""
    (record,) = site.glob("appliance_failover-*.dist-info")
    return record.name.removeprefix("appliance_failover-").removesuffix(".dist-info")


def _build(commit: str, folder: Path) -> None:
    source, wheels, building = folder / "source", folder / "wheel", folder / "site.partial"
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit],
        cwd=ROOT, capture_output=True, timeout=BUILD_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    if archive.returncode != 0:
        raise RuntimeError(
            f"git archive {commit} failed in {ROOT}: {archive.stderr.decode(errors='replace')} "
            "The release must be in this clone's history (a full clone, not a shallow one)."
        )
    source.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(source, filter="data")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(wheels), str(source)],
        check=True, capture_output=True, timeout=BUILD_TIMEOUT_SECONDS,
    )  # fmt: skip
    (wheel,) = wheels.glob("appliance_failover-*.whl")
    with zipfile.ZipFile(wheel) as unpacking:
        unpacking.extractall(building)  # noqa: S202 - the wheel pip just built from git
    # Releases before the wheel shipped the pages run as a checkout would: their own
    # manage.py, templates/ and static/ beside the packages.
    if not (building / "appliance" / "__main__.py").exists():
        for name in ("templates", "static"):
            shutil.copytree(source / name, building / name)
        shutil.copy2(source / "manage.py", building / "manage.py")
    shutil.rmtree(source)
    building.rename(folder / "site")
