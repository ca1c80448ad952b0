import os

from django.core.wsgi import get_wsgi_application

from appliance import files

files.keep_private()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")

application = get_wsgi_application()
