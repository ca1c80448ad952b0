"""Django settings for one appliance site, read entirely from the environment.

The README's table lists every variable. Defaults give a self-contained site on
a bare machine: a SQLite file and an embedded Redis in APPLIANCE_DATA_DIR.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from appliance import config

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = config.data_dir(BASE_DIR)

SECRET_KEY = config.secret_key(DATA_DIR)
DEBUG = config.env_bool("DEBUG", False)
ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", [])

# This appliance's own name, shown in the header and in audit records. It is
# not synced: each site of a pair keeps its own.
APPLIANCE_NAME = config.env_str("APPLIANCE_NAME", socket.gethostname())

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "bootstrap",
    "crispy_forms",
    "crispy_bootstrap5",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "appliance",
    "security",
    "failover",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "appliance.middleware.SiteTimeZoneMiddleware",
    "axes.middleware.AxesMiddleware",
    # Switchover first: a write registers itself before any role or freeze is read, so
    # the state it then reads cannot change under it until it is done (failover.writes).
    "failover.middleware.SwitchoverMiddleware",
    "failover.middleware.BackupRedirectMiddleware",
]

ROOT_URLCONF = "appliance.urls"
WSGI_APPLICATION = "appliance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "appliance.context_processors.appliance",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.parse(config.database_url(DATA_DIR), conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Worker, beat and web share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL, REDIS_EMBEDDED = config.redis_url(DATA_DIR)

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "appliance:status"
LOGOUT_REDIRECT_URL = "login"

# Repeated failed logins lock out the source address for a while.
AXES_FAILURE_LIMIT = config.env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
AXES_COOLOFF_TIME = timedelta(
    minutes=config.env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=1440)
)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "key", "key_confirmation"]

SESSION_COOKIE_SECURE = config.env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = config.env_int("SESSION_MINUTES", 8 * 60, minimum=5) * 60
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(config.env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "media/"

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["appliance.permissions.IsAdministrator"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Appliance failover portal API",
    "DESCRIPTION": "Public API of one appliance site.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
}

# Celery: the broker is this site's Redis; results live in database rows.
CELERY_BROKER_URL = REDIS_URL.replace("unix://", "redis+socket://", 1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
HEARTBEAT_SECONDS = config.env_int("HEARTBEAT_SECONDS", 10, minimum=1, maximum=300)
CELERY_BEAT_SCHEDULE = {
    "record-heartbeat": {
        "task": "appliance.tasks.record_heartbeat",
        "schedule": float(HEARTBEAT_SECONDS),
        "options": {"expires": HEARTBEAT_SECONDS * 2},
    },
    "record-network-heartbeat": {
        "task": "appliance.tasks.record_heartbeat",
        "schedule": float(HEARTBEAT_SECONDS),
        "kwargs": {"component": "network"},
        "options": {"expires": HEARTBEAT_SECONDS * 2, "queue": "network"},
    },
}

# Peer protocol: TLS on both sides, signed requests, bounded calls.
TLS_CERTFILE = config.env_str("TLS_CERTFILE", "")
TLS_KEYFILE = config.env_str("TLS_KEYFILE", "")
if bool(TLS_CERTFILE) != bool(TLS_KEYFILE):
    raise ImproperlyConfigured("TLS_CERTFILE and TLS_KEYFILE must be set together.")
PEER_CA_BUNDLE = config.env_str("PEER_CA_BUNDLE", "")
PEER_ALLOW_PLAIN_HTTP = config.env_bool("PEER_ALLOW_PLAIN_HTTP", False)
PEER_TIMEOUT_SECONDS = config.env_int("PEER_TIMEOUT_SECONDS", 5, minimum=1, maximum=60)
PEER_CLOCK_SKEW_SECONDS = config.env_int("PEER_CLOCK_SKEW_SECONDS", 300, minimum=5, maximum=3600)
PEER_CHECK_SECONDS = config.env_int("PEER_CHECK_SECONDS", 15, minimum=1, maximum=3600)
CELERY_BEAT_SCHEDULE["check-peer"] = {
    "task": "failover.tasks.check_peer",
    "schedule": float(PEER_CHECK_SECONDS),
    "options": {"expires": PEER_CHECK_SECONDS},
}

# How this site manages its shared IP: "linux" (netlink and gratuitous ARP; the
# worker needs CAP_NET_ADMIN and CAP_NET_RAW) or "recording" (the demo pair on
# one machine: records the wish, touches nothing).
SHARED_IP_DRIVER = config.env_choice("SHARED_IP_DRIVER", "linux", ("linux", "recording"))
# The network queue is the failover path: the monitor's polls and the shared IP.
# Its own worker (one process, with the network privilege) serves it, so a long
# data sync or a slow peer check never delays a takeover.
CELERY_TASK_ROUTES = {
    "failover.tasks.poll_primary": {"queue": "network"},
    "failover.tasks.reconcile_shared_ip": {"queue": "network"},
    "failover.tasks.announce_shared_ip": {"queue": "network"},
}
CELERY_BEAT_SCHEDULE["reconcile-shared-ip"] = {
    "task": "failover.tasks.reconcile_shared_ip",
    "schedule": float(PEER_CHECK_SECONDS),
    "options": {"expires": PEER_CHECK_SECONDS},
}
CELERY_BEAT_SCHEDULE["prune-change-log"] = {
    "task": "failover.tasks.prune_change_log",
    "schedule": 24 * 3600.0,
}
# This site's own web address, for the primary's fencing check (set by runsite).
WEB_SELF_URL = config.env_str("WEB_SELF_URL", "")

# Alerts go out by e-mail through these; without EMAIL_HOST they are written to
# files in $APPLIANCE_DATA_DIR/mail, so nothing is lost on a machine without mail.
EMAIL_HOST = config.env_str("EMAIL_HOST", "")
EMAIL_PORT = config.env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = config.env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = config.env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = config.env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = config.env_str("DEFAULT_FROM_EMAIL", f"appliance@{APPLIANCE_NAME}")
if not EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = DATA_DIR / "mail"

LOG_LEVEL = config.env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
