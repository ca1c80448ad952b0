"""What a record from the primary must satisfy before the backup keeps it.

The backup never stores a value its own pages would refuse: every column goes
through the rules of its model field (null, blank, length, choices, and the
field's validators: a user name's characters, an e-mail address, an integer's
range), and the extra columns (group and permission keys, tokens) must have
their documented shape. A site settings row with the time zone `Not/AZone`, or
a 5000-character site name, would make every page of the backup fail; here it
refuses the sync instead, naming the model, the record's key and the field.

Checks run while the stream is read, before anything is written, so a refused
change set leaves the backup's data exactly as it was. The common case (a
string within its length, an integer in range) is decided without building a
ValidationError; only a value that fails takes Django's own `Field.clean` to
word the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models

# A check returns None for a good value, or why it is not.
Check = Callable[[Any], str | None]
MAX_REASON = 200
TEXT_FIELDS = (models.CharField, models.TextField)
INTEGER_FIELDS = (models.IntegerField, models.AutoField)
CONVERTED_FIELDS = (models.DateTimeField, models.UUIDField, models.FileField)


class InvalidRecord(Exception):
    """A record the primary sent breaks a rule of its model. `message` says which."""

    def __init__(self, label: str, key: object, column: str, reason: str) -> None:
        #: The record and its refused value, without saying where it came from.
        self.record = (
            f"{label} record with key {repr(key)[:40]} has a value in field {column} "
            f"that this site refuses: {reason[:MAX_REASON]}"
        )
        self.message = (
            f"The primary's {self.record} Nothing was applied: correct the record on the "
            "primary, then sync again."
        )
        super().__init__(self.message)


def first_refused(
    label: str, column_checks: list[Check], columns: list[str], row: list[Any]
) -> InvalidRecord:
    """The first column of `row` its check refuses, as the error to report."""
    for check, column, value in zip(column_checks, columns, row, strict=True):
        if (reason := check(value)) is not None:
            return InvalidRecord(label, row[0], column, reason)
    return InvalidRecord(label, row[0], "values", "They break a rule of the model.")


def _reason_from_django(field: models.Field, value: Any) -> str:
    try:
        field.clean(value, None)
    except ValidationError as error:
        return " ".join(error.messages)
    return f"{type(value).__name__} is not a value of this field."


def field_check(field: models.Field) -> Check:
    """The rules of `field` for a value as JSON carries it (what its page would accept)."""
    null = field.null
    if isinstance(field, CONVERTED_FIELDS):
        # Parsed by their converter (a bad text fails there); only null is left to check.
        return lambda value: None if value is not None or null else "It may not be empty."
    if isinstance(field, TEXT_FIELDS):
        return _text_check(field)
    if isinstance(field, models.BooleanField):
        return lambda value: (
            None
            if type(value) is bool or (value is None and null)
            else _reason_from_django(field, value)
        )
    if isinstance(field, INTEGER_FIELDS):
        return _integer_check(field)
    return lambda value: None if value is None and null else _clean(field, value)


def _clean(field: models.Field, value: Any) -> str | None:
    try:
        field.clean(value, None)
    except ValidationError as error:
        return " ".join(error.messages)
    return None


def _integer_check(field: models.Field) -> Check:
    """An integer's range (its validators, or the database's) compared directly: the check
    runs for every key of a full sync. Other validators, if any, run as they are."""
    null = field.null
    choices = {key for key, _label in field.flatchoices} if field.choices else None
    low, high, others = None, None, []
    for validator in field.validators:
        if type(validator) is MinValueValidator and type(validator.limit_value) is int:
            low = validator.limit_value if low is None else max(low, validator.limit_value)
        elif type(validator) is MaxValueValidator and type(validator.limit_value) is int:
            high = validator.limit_value if high is None else min(high, validator.limit_value)
        else:
            others.append(validator)

    def integer(value: Any) -> str | None:
        if type(value) is not int:
            return None if value is None and null else _reason_from_django(field, value)
        if (
            (low is not None and value < low)
            or (high is not None and value > high)
            or (choices is not None and value not in choices)
        ):
            return _reason_from_django(field, value)
        try:
            for validate in others:
                validate(value)
        except ValidationError as error:
            return " ".join(error.messages)
        return None

    return integer


def _text_check(field: models.Field) -> Check:
    null, blank, max_length = field.null, field.blank, field.max_length
    choices = {key for key, _label in field.flatchoices} if field.choices else None
    validators = [v for v in field.validators if not isinstance(v, MaxLengthValidator)]

    def text(value: Any) -> str | None:
        if value is None and null:
            return None
        if type(value) is not str:
            return _reason_from_django(field, value)
        if value == "":
            return None if blank else _reason_from_django(field, value)
        if max_length is not None and len(value) > max_length:
            return f"It is {len(value)} characters long; at most {max_length} are allowed."
        if choices is not None and value not in choices:
            return f"{value[:64]!r} is not one of its choices."
        try:
            for validate in validators:
                validate(value)
        except ValidationError as error:
            return " ".join(error.messages)
        return None

    return text


def _is_iso_moment(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _natural_keys(value: Any) -> str | None:
    if type(value) is not list or not all(
        type(key) is list and len(key) == 2 and all(type(part) is str for part in key)
        for key in value
    ):
        return "It must be a list of [app label, codename] pairs."
    return None


def _keys(value: Any) -> str | None:
    if type(value) is not list or not all(type(key) is int for key in value):
        return "It must be a list of integer keys."
    return None


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _user_token(value: Any) -> str | None:
    """Sync format 3 sends the token's SHA-256 digest (64 hex digits); format 2 sent
    the key itself (at most 40 characters), which the backup hashes."""
    if value is None:
        return None
    if (
        type(value) is not list
        or len(value) != 2
        or type(value[0]) is not str
        or not (1 <= len(value[0]) <= 40 or _DIGEST.fullmatch(value[0]))
        or not _is_iso_moment(value[1])
    ):
        return (
            "It must be null or [a key of at most 40 characters or a SHA-256 digest in hex, "
            "an ISO 8601 time]."
        )
    return None


def _account_tokens(value: Any) -> str | None:
    if type(value) is not list or not all(
        type(token) is list
        and len(token) == 4
        and type(token[0]) is str
        and 1 <= len(token[0]) <= 255
        and _is_iso_moment(token[1])
        and _is_iso_moment(token[2])
        and type(token[3]) is str
        for token in value
    ):
        return "It must be a list of [checksum, expires, created, scope] (times in ISO 8601)."
    return None


def recording_check(field: models.Field) -> Check:
    """A report's recording column: null, or {name, size, sha256} with a name that fits."""
    max_length = field.max_length

    def recording(value: Any) -> str | None:
        if value is None:
            return None
        if type(value) is not dict:
            return "It must be null or {name, size, sha256}."
        name, size, sha256 = value.get("name"), value.get("size"), value.get("sha256")
        if type(name) is not str or not name or len(name) > max_length:
            return f"Its name must be text of 1 to {max_length} characters."
        if type(size) is not int or size < 0:
            return "Its size must be a whole number of bytes."
        if type(sha256) is not str or len(sha256) != 64:
            return "Its sha256 must be 64 hexadecimal digits."
        return None

    return recording


EXTRA_CHECKS: dict[str, Check] = {
    "permissions": _natural_keys,
    "user_permissions": _natural_keys,
    "groups": _keys,
    "api_token": _user_token,
    "tokens": _account_tokens,
}
