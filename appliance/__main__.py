"""`appliance <command>`: the site's management commands (migrate, runsite, failover ...).

What `manage.py` is in the source tree, for an installed site: the wheel installs
this as the `appliance` command, and `python -m appliance` runs it too.
"""

import os
import sys

from appliance import files


def main() -> None:
    files.keep_private()  # before anything is written: the site's files are its own
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
