#!/usr/bin/env python
"""The site's management commands, from the source tree (installed: the `appliance` command)."""

from appliance.__main__ import main

if __name__ == "__main__":
    main()
