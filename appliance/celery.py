"""The site's Celery application: a worker and beat on this site's Redis."""

import os

from celery import Celery
from celery.signals import setup_logging
from django.conf import settings

from appliance import files, logconfig

files.keep_private()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "appliance.settings")

app = Celery("appliance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_the_sites_logging(**_kwargs: object) -> None:
    """Workers and beat log as every other process of the site (appliance.logconfig).

    A receiver of this signal stops Celery from installing handlers and levels of
    its own (its --loglevel included): LOG_LEVEL and LOG_FORMAT decide.
    """
    logconfig.configure(settings.LOGGING)
