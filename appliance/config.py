"""Read the site's configuration from environment variables.

Every setting of a site comes from the environment, so two sites can run side
by side on one machine. A bad value stops the site at start-up with a message
that names the variable and says what it expects.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

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


def data_dir(base_dir: Path) -> Path:
    """The folder that holds this site's SQLite file, embedded Redis, media and logs."""
    path = Path(env_str("APPLIANCE_DATA_DIR", str(base_dir / "var" / "site"))).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ImproperlyConfigured(
            f"APPLIANCE_DATA_DIR={str(path)!r} cannot be created: {error.strerror}."
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
