"""Settings for the in-process tests: the site's own settings in a throwaway data folder.

Set DATABASE_URL and REDIS_URL to run the suite against PostgreSQL and a Redis
server (CI does both); unset, the embedded defaults are used.
"""

import os
import tempfile

os.environ.setdefault("APPLIANCE_DATA_DIR", tempfile.mkdtemp(prefix="appliance-test-"))
os.environ.setdefault("APPLIANCE_NAME", "test-site")

from appliance.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
