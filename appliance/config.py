"""Read the site's configuration from environment variables.

Every setting of a site comes from the environment, so two sites can run side
by side on one machine. A bad value stops the site at start-up with a message
that names the variable and says what it expects.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import uuid
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value in (None, "") else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use 1/0, true/false or yes/no.")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = _raw(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small: the minimum is {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is too large: the maximum is {maximum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of: {', '.join(choices)}.")
    return value


def env_networks(name: str, default: list[str]) -> list[IPNetwork]:
    """Comma-separated addresses or networks (192.0.2.7, 198.51.100.0/24, ::1)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an IP address or network (e.g. 192.0.2.7 or "
                "198.51.100.0/24)."
            ) from None
    return networks


def data_dir(base_dir: Path) -> Path:
    """The folder that holds this site's SQLite file, embedded Redis, media and logs."""
    path = Path(env_str("APPLIANCE_DATA_DIR", str(base_dir / "var" / "site"))).resolve()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ImproperlyConfigured(
            f"APPLIANCE_DATA_DIR={str(path)!r} cannot be created: {error.strerror}."
        ) from None
    try:
        path.chmod(0o700)  # the database, the secret key and the logs are in it
    except OSError as error:
        raise ImproperlyConfigured(
            f"APPLIANCE_DATA_DIR={str(path)!r} cannot be made private (mode 0700): "
            f"{error.strerror}. Run the site as the folder's owner."
        ) from None
    return path


def secret_key(folder: Path) -> str:
    """SECRET_KEY from the environment, or one generated once and kept in the data folder."""
    value = _raw("SECRET_KEY")
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured(
                "SECRET_KEY is too short: use at least 32 random characters."
            )
        return value
    key_file = folder / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


def appliance_id(folder: Path) -> str:
    """This site's GUID (APPLIANCE_ID, or one generated once and kept in the data folder).

    The Command API names the appliance by it. It lives beside the secret key rather
    than in the database, so a site whose database is down still says who it is.
    """
    value = _raw("APPLIANCE_ID")
    if value:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ImproperlyConfigured(
                f"APPLIANCE_ID={value!r} is not a GUID: use the form "
                "0f3c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f, or leave it unset to generate one."
            ) from None
    id_file = folder / "appliance_id"
    if not id_file.exists():
        # Written whole under a temporary name, then linked into place: a process that
        # starts at the same moment reads either no file or the complete one.
        draft = folder / f".appliance_id.{os.getpid()}"
        draft.write_text(f"{uuid.uuid4()}\n")
        try:
            os.link(draft, id_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return id_file.read_text().strip()


def database_url(folder: Path) -> str:
    value = env_str("DATABASE_URL", f"sqlite:///{folder / 'db.sqlite3'}")
    if not value.startswith(("sqlite://", "postgres://", "postgresql://")):
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with sqlite:// or postgresql://, not {value.split(':')[0]!r}."
        )
    return value


def redis_url(folder: Path) -> tuple[str, bool]:
    """The Redis URL and whether it is the embedded server this site starts itself."""
    value = _raw("REDIS_URL")
    if value:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ImproperlyConfigured(
                "REDIS_URL must start with redis://, rediss:// or unix://, "
                f"not {value.split(':')[0]!r}."
            )
        return value, False
    return f"unix://{folder / 'redis.sock'}", True


# A cookie name is an HTTP token (RFC 6265): no spaces, no separators.
COOKIE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def cookie_suffix(site_name: str) -> str:
    """The site's name as it may appear in a cookie name ("Site A" -> "Site-A")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", site_name).strip("-") or "site"


def env_cookie_name(name: str, default: str) -> str:
    value = env_str(name, default)
    if not COOKIE_NAME.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a cookie name: use letters, digits, '-', '_' or '.'."
        )
    return value
