"""Forms of the Users tab, and the rule that keeps the site administrable.

"Administrative rights" is the superuser flag; the staff flag follows it so the
two never disagree. No form here ever puts a password into an error, a message
or an audit record.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.contrib.auth.forms import SetPasswordForm, UserCreationForm
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ValidationError
from django.db import transaction

CONFIRMATION_DIFFERS = "The two entries differ; type the same password twice."

ADMIN_LABEL = "Administrative rights"
ADMIN_HELP = "Full access to this portal: users, configuration, management and failover."
ACTIVE_HELP = "Inactive users cannot log in. Their account and history are kept."

USER_FIELDS = ["username", "first_name", "last_name", "email", "is_superuser", "groups"]


@contextmanager
def administrators_locked() -> Iterator[None]:
    """Run a change that could remove an administrator with the administrators' rows locked.

    Two administrators demoting each other at the same moment would each still
    see the other in place and both succeed. Locking the active administrators'
    rows makes the second change wait, then validate against the first one's
    result. (SQLite serialises write transactions by itself.)
    """
    with transaction.atomic():
        list(
            User.objects.select_for_update()
            .filter(is_superuser=True, is_active=True)
            .values_list("pk", flat=True)
        )
        yield


def check_administrators_remain(
    actor: User | None, user: User, *, admin: bool, active: bool
) -> None:
    """Refuse a change that would leave the site without an active administrator.

    An administrator may not deactivate or demote themselves (the next request
    would lock them out mid-task), and the last active administrator may not be
    deactivated or demoted at all. Reads the database, not `user`, so it sees
    what is stored rather than what a form has half-applied.
    """
    active_admins = set(
        User.objects.filter(is_superuser=True, is_active=True).values_list("pk", flat=True)
    )
    if user.pk not in active_admins or (admin and active):
        return
    is_last = active_admins == {user.pk}
    if actor is not None and actor.pk == user.pk:
        own = (
            "deactivate your own account" if not active else "remove your own administrative rights"
        )
        hint = (
            " There is no other active administrator yet: give another user administrative "
            "rights first."
            if is_last
            else ""
        )
        raise ValidationError(
            f"You cannot {own}. Ask another administrator to do it.{hint}", code="self_lockout"
        )
    if is_last:
        what = "deactivate" if not active else "remove the administrative rights of"
        raise ValidationError(
            f"Cannot {what} {user.username}: they are the only active administrator, and the "
            "site would be left without one. Give another user administrative rights first.",
            code="last_administrator",
        )


def _submit_helper(label: str) -> FormHelper:
    helper = FormHelper()
    helper.add_input(Submit("save", label))
    return helper


def _check_username_is_free(username: str, user: User | None = None) -> None:
    """Refuse names that differ from an existing one only in case: they read as the same person."""
    taken = User.objects.filter(username__iexact=username)
    if user is not None and user.pk is not None:
        taken = taken.exclude(pk=user.pk)
    if taken.exists():
        raise ValidationError(
            f"The user name {username} is already taken; choose another one.", code="unique"
        )


def _label_administrative_rights(form: forms.ModelForm) -> None:
    form.fields["is_superuser"].label = ADMIN_LABEL
    form.fields["is_superuser"].help_text = ADMIN_HELP
    form.fields["groups"].required = False
    form.fields["groups"].queryset = Group.objects.order_by("name")
    form.fields["groups"].help_text = "A user gets every permission of each of their groups."


class UserCreateForm(UserCreationForm):
    """A new account with a password checked against the site's password validators."""

    error_messages = {**UserCreationForm.error_messages, "password_mismatch": CONFIRMATION_DIFFERS}

    class Meta(UserCreationForm.Meta):
        fields = USER_FIELDS
        widgets = {"groups": forms.SelectMultiple(attrs={"size": 6})}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        _label_administrative_rights(self)
        self.helper = _submit_helper("Create user")

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        _check_username_is_free(username)
        return username

    def save(self, commit: bool = True) -> User:
        self.instance.is_staff = self.instance.is_superuser
        return super().save(commit=commit)


class UserEditForm(forms.ModelForm):
    """Everything about an account except its password, guarded by the administrator rule."""

    class Meta:
        model = User
        fields = [*USER_FIELDS, "is_active"]
        widgets = {"groups": forms.SelectMultiple(attrs={"size": 6})}
        help_texts = {"is_active": ACTIVE_HELP}

    def __init__(self, *args: object, actor: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        _label_administrative_rights(self)
        self.helper = _submit_helper("Save")

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        _check_username_is_free(username, self.instance)
        return username

    def clean(self) -> dict:
        cleaned = super().clean()
        active = cleaned.get("is_active", False)
        try:
            check_administrators_remain(
                self.actor, self.instance, admin=cleaned.get("is_superuser", False), active=active
            )
        except ValidationError as error:
            self.add_error("is_superuser" if active else "is_active", error)
        return cleaned

    def save(self, commit: bool = True) -> User:
        self.instance.is_staff = self.instance.is_superuser
        return super().save(commit=commit)

    def describe_changes(self) -> str:
        """The changed fields with old and new values, for the audit trail."""
        parts = []
        for name in self.changed_data:
            before = _describe(self.initial.get(name))
            after = _describe(self.cleaned_data.get(name))
            parts.append(f"{self.fields[name].label.lower()} {before} → {after}")
        return "; ".join(parts)


class UserPasswordForm(SetPasswordForm):
    """A new password for an account, checked against the site's password validators."""

    error_messages = {**SetPasswordForm.error_messages, "password_mismatch": CONFIRMATION_DIFFERS}

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _submit_helper("Set password")


class DeactivateUserForm(forms.Form):
    """No fields: it exists to run the administrator rule and carry its error to the page."""

    def __init__(self, *args: object, actor: User, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.user = user

    def clean(self) -> dict:
        cleaned = super().clean()
        check_administrators_remain(
            self.actor, self.user, admin=self.user.is_superuser, active=False
        )
        return cleaned


class PermissionChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Permission) -> str:
        return f"{obj.content_type.app_label} · {obj.content_type.model} · {obj.name}"


class GroupForm(forms.ModelForm):
    permissions = PermissionChoiceField(
        queryset=Permission.objects.select_related("content_type").order_by(
            "content_type__app_label", "content_type__model", "codename"
        ),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 15}),
        help_text="Every member of the group gets these permissions.",
    )

    class Meta:
        model = Group
        fields = ["name", "permissions"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.helper = _submit_helper("Save")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = Group.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError(
                f"A group named {name} already exists; choose another name.", code="unique"
            )
        return name


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return ", ".join(sorted(str(item) for item in value)) or "(none)"
    return str(value)
