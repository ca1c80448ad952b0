"""The site's files are its own: the data folder 0700, every file in it 0600.

The data folder holds the database, the secret key, exports of whole sites,
alert mails, sync spools, recordings and logs. Every process of the site sets
the umask PRIVATE_UMASK as it starts (the settings do, before anything is
written), so what it creates is its user's alone whatever umask it was started
with; its children (gunicorn, the workers, the embedded Redis) inherit it.
`restrict` puts right what an older release or another tool left open.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def keep_private() -> None:
    """From now on, files and folders this process creates are its user's alone."""
    os.umask(PRIVATE_UMASK)


def restrict(folder: Path) -> int:
    """Take group and other access away from `folder` and everything in it; the owner's
    bits stay as they were. Symbolic links are neither changed nor followed. Returns
    how many modes it changed."""
    changed = 0
    if not folder.is_dir():
        return changed
    for root, _folders, files in os.walk(folder):
        for name in [root, *(os.path.join(root, entry) for entry in files)]:
            mode = os.lstat(name).st_mode
            if stat.S_ISLNK(mode) or not mode & 0o077:
                continue
            os.chmod(name, stat.S_IMODE(mode) & ~0o077)
            changed += 1
    return changed
