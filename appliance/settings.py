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

from appliance import config, files, logconfig

# Before anything is written: what this process creates is its user's alone.
files.keep_private()

BASE_DIR = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent


def shipped(folder: str) -> Path:
    """The site's pages or static files: the source tree's top-level folder, or the copy
    an installed wheel carries inside the package (setup.py puts it there)."""
    source = BASE_DIR / folder
    return source if source.is_dir() else PACKAGE_DIR / folder


DATA_DIR = config.data_dir(BASE_DIR)

SECRET_KEY = config.secret_key(DATA_DIR)
DEBUG = config.env_bool("DEBUG", False)
# "production": HTTPS only (HSTS, the redirect, Secure cookies); `manage.py check
# --deploy` is clean. "development": plain HTTP allowed, for `make run` and the tests.
DEPLOYMENT = config.env_choice("DEPLOYMENT", "development", ("development", "production"))
PRODUCTION = DEPLOYMENT == "production"
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG=1 is refused with DEPLOYMENT=production: unset DEBUG.")
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY is too short for DEPLOYMENT=production: use at least 50 random characters."
    )
ALLOWED_HOSTS = config.env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = config.env_list("CSRF_TRUSTED_ORIGINS", [])

# This appliance's own name, shown in the header and in audit records. It is
# not synced: each site of a pair keeps its own.
APPLIANCE_NAME = config.env_str("APPLIANCE_NAME", socket.gethostname())
# Its GUID, the `id` of `<appliance>` in the Command API's check_health (not synced either).
APPLIANCE_ID = config.appliance_id(DATA_DIR)

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
    "oauth2_provider",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "csp",
    "appliance",
    "security",
    "failover",
]

MIDDLEWARE = [
    # Before all else: REMOTE_ADDR is the client's address, read through a trusted proxy.
    "appliance.proxies.TrustedProxyMiddleware",
    # Then: every line logged during a request carries its id; the whole time is measured.
    "appliance.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
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
        # Before the other apps' templates: the site's own pages win (base.html, 404.html).
        "DIRS": [shipped("templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "appliance.context_processors.appliance",
                "failover.context_processors.failover",
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

# Reverse proxies whose X-Forwarded-For (and X-Forwarded-Proto) this site believes
# (appliance.proxies); nobody else's.
TRUSTED_PROXIES = config.env_networks("TRUSTED_PROXIES", [])
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Repeated failed logins lock out, each on its own count, the source address (whatever
# name it tries) and the account (from wherever it is tried): an attacker behind a
# proxy locks out his own address and the accounts he attacks, nobody else.
AXES_FAILURE_LIMIT = config.env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
AXES_COOLOFF_TIME = timedelta(
    minutes=config.env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=1440)
)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_CLIENT_IP_CALLABLE = "appliance.proxies.request_client_address"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "key", "key_confirmation"]

# Browsers keep cookies per host, not per port: two sites on one host (the `make run`
# pair) need cookie names of their own, or logging into one logs out of the other.
SESSION_COOKIE_NAME = config.env_cookie_name(
    "SESSION_COOKIE_NAME", f"sessionid-{config.cookie_suffix(APPLIANCE_NAME)}"
)
CSRF_COOKIE_NAME = config.env_cookie_name(
    "CSRF_COOKIE_NAME", f"csrftoken-{config.cookie_suffix(APPLIANCE_NAME)}"
)
if SESSION_COOKIE_NAME == CSRF_COOKIE_NAME:
    raise ImproperlyConfigured(
        f"SESSION_COOKIE_NAME and CSRF_COOKIE_NAME are both {SESSION_COOKIE_NAME!r}: "
        "give them different names."
    )
SESSION_COOKIE_SECURE = PRODUCTION or config.env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = config.env_int("SESSION_MINUTES", 8 * 60, minimum=5) * 60
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SECURE_SSL_REDIRECT = True
    # A load balancer's or a container's plain-HTTP probe, and the primary's check of
    # its own web (failover.shared_ip), answer where they ask; it says nothing secret.
    SECURE_REDIRECT_EXEMPT = [r"^check_health$"]
    SECURE_HSTS_SECONDS = config.env_int(
        "HSTS_SECONDS", 365 * 86400, minimum=3600, maximum=2 * 365 * 86400
    )
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading binds the whole registrable domain in browsers for good: the domain's
    # owner decides that, not one appliance (HSTS_PRELOAD=1 when they have).
    SECURE_HSTS_PRELOAD = config.env_bool("HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
# The pages load scripts, styles, fonts and images from the site alone, run no inline
# script or style, and may not be framed (django-csp; every profile, so the browser
# tests run the pages under it). Bootstrap's form controls draw with data: images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [shipped("static")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(config.env_str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_URL = "media/"
# Django sets these modes on saved files itself, whatever the umask.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API accounts' OAuth 2.0 bearer tokens, administrators' API tokens and sessions.
        "appliance.api_accounts.ApiAccountAuthentication",
        "appliance.api_tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["appliance.permissions.HasFullAccess"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# API accounts authenticate with OAuth 2.0 client credentials (appliance.api_accounts):
# bearer tokens that last an hour, as BeyondTrust's, kept only as checksums, accepted
# only in the Authorization header.
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "appliance.api_accounts.AccountValidator",
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "SCOPES": {"api": "The site's APIs, as far as the API account's permission allows"},
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    # Client credentials issue no refresh token and redirect nowhere; should either
    # ever be used, the safe choice holds.
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
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
if PRODUCTION and PEER_ALLOW_PLAIN_HTTP:
    raise ImproperlyConfigured(
        "PEER_ALLOW_PLAIN_HTTP=1 is for development only: DEPLOYMENT=production refuses it."
    )
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
# The network queue is the failover path: the monitor's polls and what follows a
# role change (the shared IP, the DNS swing, the takeover hooks). Its own worker
# (one process, with the network privilege) serves it, so a long data sync or a
# slow peer check never delays a takeover.
CELERY_TASK_ROUTES = {
    "failover.tasks.poll_primary": {"queue": "network"},
    "failover.tasks.follow_role": {"queue": "network"},
    "failover.tasks.announce_shared_ip": {"queue": "network"},
    # Continuous replication's rounds: a worker of their own, so a long full sync or a
    # slow alert never holds the backup back from the primary.
    "failover.tasks.replicate": {"queue": "replication"},
}
CELERY_BEAT_SCHEDULE["keep-replicating"] = {
    "task": "failover.tasks.keep_replicating",
    "schedule": 5.0,
    "options": {"expires": 5},
}
CELERY_BEAT_SCHEDULE["follow-role"] = {
    "task": "failover.tasks.follow_role",
    "schedule": float(PEER_CHECK_SECONDS),
    "options": {"expires": PEER_CHECK_SECONDS},
}
# Takeover hooks: every executable in this folder runs on each role change, set up
# by the machine's administrator (never from the web). Unset: no hooks.
FAILOVER_HOOKS_DIR = config.env_str("FAILOVER_HOOKS_DIR", "")
FAILOVER_HOOK_TIMEOUT_SECONDS = config.env_int(
    "FAILOVER_HOOK_TIMEOUT_SECONDS", 30, minimum=1, maximum=600
)
CELERY_BEAT_SCHEDULE["prune-change-log"] = {
    "task": "failover.tasks.prune_change_log",
    "schedule": 24 * 3600.0,
}
# What one sync may hold on this backup's disk while it is verified (the spooled
# records and the recordings fetched before the apply), in bytes.
SYNC_SPOOL_MAX_BYTES = config.env_int("SYNC_SPOOL_MAX_BYTES", 64 * 1024**3, minimum=1024**2)
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
# An alert whose e-mail or webhook fails is tried again, waiting up to twice as long
# each time (first up to ALERT_RETRY_BACKOFF_SECONDS, at most 10 minutes), until
# ALERT_RETRY_SECONDS have passed; then it is recorded as undeliverable.
ALERT_RETRY_SECONDS = config.env_int("ALERT_RETRY_SECONDS", 3600, minimum=1, maximum=7 * 86400)
ALERT_RETRY_BACKOFF_SECONDS = config.env_int(
    "ALERT_RETRY_BACKOFF_SECONDS", 10, minimum=1, maximum=600
)
# Alerts are not posted to loopback or link-local addresses (this machine's own
# services, a cloud's metadata service) unless this allows it (failover.webhook).
ALERT_WEBHOOK_ALLOW_PRIVATE = config.env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", False)
if not EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = DATA_DIR / "mail"

# Who may read /metrics (appliance.metrics): these addresses, or anyone with the token.
METRICS_ALLOWED_ADDRESSES = config.env_networks("METRICS_ALLOWED_ADDRESSES", ["127.0.0.0/8", "::1"])
METRICS_TOKEN = config.env_str("METRICS_TOKEN", "")

# One logging configuration for every process (appliance.logconfig): text or JSON
# lines on standard error; runsite writes each process's to a file it rotates.
LOG_LEVEL = config.env_choice("LOG_LEVEL", "INFO", logconfig.LEVELS)
LOG_FORMAT = config.env_choice("LOG_FORMAT", "text", logconfig.FORMATS)
LOG_MAX_BYTES = config.env_int("LOG_MAX_BYTES", 10 * 1024 * 1024, minimum=10_000)
LOG_BACKUP_COUNT = config.env_int("LOG_BACKUP_COUNT", 5, minimum=1, maximum=100)
LOGGING = logconfig.logging_config(level=LOG_LEVEL, log_format=LOG_FORMAT, site=APPLIANCE_NAME)
LOGGING_CONFIG = "appliance.logconfig.configure"
