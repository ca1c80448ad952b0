import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse

from appliance.models import AuditEvent
from appliance.user_forms import DeactivateUserForm, UserEditForm
from tests.conftest import DEFAULT_PASSWORD, make_user

pytestmark = pytest.mark.django_db

LIST = reverse("appliance:users:list")
CREATE = reverse("appliance:users:create")
GROUPS = reverse("appliance:users:groups")
GROUP_CREATE = reverse("appliance:users:group_create")
NEW_PASSWORD = "a fresh long passphrase 77"


def url(name: str, pk: int) -> str:
    return reverse(f"appliance:users:{name}", args=[pk])


def edit_data(user: User, **changes: object) -> dict:
    """The edit form as the browser would post it for `user`, with some fields changed."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "groups": [group.pk for group in user.groups.all()],
    }
    if user.is_superuser:
        data["is_superuser"] = "on"
    if user.is_active:
        data["is_active"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not False}


def create_data(**changes: object) -> dict:
    data = {
        "username": "rita",
        "first_name": "Rita",
        "last_name": "Ramos",
        "email": "rita@example.com",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    data.update(changes)
    return data


def can_log_in(username: str, password: str) -> bool:
    """Through the login page, so the lockout backend sees a real request."""
    client = Client()
    client.post(reverse("login"), {"username": username, "password": password})
    return "_auth_user_id" in client.session


def errors(response) -> str:
    return response.content.decode()


@pytest.fixture
def bob(db) -> User:
    return make_user("bob", email="bob@example.com")


@pytest.fixture
def support(db) -> Group:
    return Group.objects.create(name="Support")


def page_urls(user: User, group: Group) -> list[str]:
    return [
        LIST,
        CREATE,
        url("edit", user.pk),
        url("set_password", user.pk),
        GROUPS,
        GROUP_CREATE,
        url("group_edit", group.pk),
    ]


def action_urls(user: User) -> list[str]:
    return [url("deactivate", user.pk), url("reactivate", user.pk)]


# Personas


def test_it_sends_anonymous_users_to_login(anon_client, bob, support):
    for address in page_urls(bob, support) + action_urls(bob):
        for response in (anon_client.get(address), anon_client.post(address)):
            assert response.status_code == 302, address
            assert response["Location"].startswith("/login"), address
    assert User.objects.get(pk=bob.pk).is_active


def test_it_forbids_users_without_administrative_rights(user_client, bob, support):
    for address in page_urls(bob, support) + action_urls(bob):
        assert user_client.get(address).status_code == 403, address
    assert user_client.post(CREATE, create_data()).status_code == 403
    assert (
        user_client.post(url("edit", bob.pk), edit_data(bob, is_superuser="on")).status_code == 403
    )
    assert user_client.post(url("deactivate", bob.pk)).status_code == 403
    assert user_client.post(GROUP_CREATE, {"name": "Ops"}).status_code == 403
    bob.refresh_from_db()
    assert bob.is_active and not bob.is_superuser
    assert not User.objects.filter(username="rita").exists()
    assert not Group.objects.filter(name="Ops").exists()
    assert not AuditEvent.objects.exists()


def test_it_shows_every_page_to_administrators(admin_client, bob, support):
    for address in page_urls(bob, support):
        assert admin_client.get(address).status_code == 200, address


def test_deactivating_and_reactivating_only_accept_post(admin_client, bob):
    for address in action_urls(bob):
        assert admin_client.get(address).status_code == 405
    assert User.objects.get(pk=bob.pk).is_active


def test_it_refuses_a_post_without_csrf_token(admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(CREATE, create_data()).status_code == 403
    assert not User.objects.filter(username="rita").exists()


# The list


def test_the_list_shows_each_account_with_rights_status_groups_and_last_login(
    admin_client, regular_user, support
):
    regular_user.groups.add(support)
    make_user("gone", is_active=False)
    page = admin_client.get(LIST).content.decode()
    assert 'data-testid="users-table"' in page
    assert page.count('data-testid="user-row"') == 3
    assert 'data-testid="user-username">rep</a>' in page
    assert "Rita Rep" in page
    assert "rep@example.com" in page
    assert page.count('data-testid="admin-badge"') == 1
    assert page.count('data-testid="inactive-badge"') == 1
    assert "Support" in page
    assert "Never" in page


def test_the_search_matches_user_name_full_name_and_e_mail(admin_client, regular_user, bob):
    def usernames(query: str) -> list[str]:
        page = admin_client.get(LIST, {"q": query}).content.decode()
        return [name for name in ("admin", "rep", "bob") if f">{name}</a>" in page]

    assert usernames("bo") == ["bob"]
    assert usernames("rita rep") == ["rep"]
    assert usernames("EXAMPLE.COM") == ["admin", "rep", "bob"]
    assert usernames("nobody") == []
    assert "No user matches" in admin_client.get(LIST, {"q": "nobody"}).content.decode()


def test_the_list_shows_fifty_users_a_page(admin_client):
    User.objects.bulk_create(User(username=f"user{i:03}") for i in range(60))
    first = admin_client.get(LIST).content.decode()
    assert first.count('data-testid="user-row"') == 50
    assert "Page 1 of 2 (61 users)" in first
    second = admin_client.get(LIST, {"page": 2}).content.decode()
    assert second.count('data-testid="user-row"') == 11
    assert ">user059</a>" in second


def test_paging_keeps_the_search_and_tolerates_a_bad_page_number(admin_client):
    User.objects.bulk_create(User(username=f"user{i:03}") for i in range(60))
    first = admin_client.get(LIST, {"q": "user"}).content.decode()
    assert "?q=user&amp;page=2" in first
    assert admin_client.get(LIST, {"page": "999"}).content.decode().count("user-row") == 11
    assert admin_client.get(LIST, {"page": "x"}).content.decode().count("user-row") == 50


# Creating


def test_it_creates_a_user_who_can_then_log_in(admin_client, support):
    response = admin_client.post(CREATE, create_data(groups=[support.pk]), follow=True)
    assert "User rita created." in response.content.decode()
    rita = User.objects.get(username="rita")
    assert (rita.first_name, rita.last_name, rita.email) == ("Rita", "Ramos", "rita@example.com")
    assert list(rita.groups.all()) == [support]
    assert not rita.is_superuser and not rita.is_staff and rita.is_active
    assert can_log_in("rita", NEW_PASSWORD)
    event = AuditEvent.objects.get(action="user.created")
    assert event.actor == "admin"
    assert "rita" in event.detail and "Support" in event.detail
    assert NEW_PASSWORD not in event.detail


def test_creating_an_administrator_sets_the_staff_flag_too(admin_client):
    admin_client.post(CREATE, create_data(is_superuser="on"))
    rita = User.objects.get(username="rita")
    assert rita.is_superuser and rita.is_staff
    assert "administrative rights: yes" in AuditEvent.objects.get(action="user.created").detail


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Zq7!x", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("5829174630218", "This password is entirely numeric."),
        ("rita@example.cm", "The password is too similar to the"),
    ],
)
def test_it_rejects_a_password_the_validators_refuse_and_saves_nothing(
    admin_client, password, message
):
    response = admin_client.post(CREATE, create_data(password1=password, password2=password))
    assert response.status_code == 200
    assert message in errors(response)
    assert password not in errors(response)
    assert not User.objects.filter(username="rita").exists()
    assert not AuditEvent.objects.exists()


def test_it_rejects_a_differing_password_confirmation(admin_client):
    response = admin_client.post(CREATE, create_data(password2=NEW_PASSWORD + "x"))
    assert "The two entries differ; type the same password twice." in errors(response)
    assert not User.objects.filter(username="rita").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"username": "REP"}, "The user name REP is already taken; choose another one."),
        ({"username": "rita ramos!"}, "Enter a valid username."),
        ({"username": ""}, "This field is required."),
        ({"email": "rita-at-example"}, "Enter a valid email address."),
        ({"groups": ["999"]}, "Select a valid choice."),
    ],
)
def test_it_rejects_bad_account_details_and_saves_nothing(
    admin_client, regular_user, changes, message
):
    before = User.objects.count()
    response = admin_client.post(CREATE, create_data(**changes))
    assert response.status_code == 200
    assert message in errors(response)
    assert User.objects.count() == before
    assert not AuditEvent.objects.exists()


def test_passwords_are_hidden_from_error_reports(admin_client, bob):
    created = admin_client.post(CREATE, create_data())
    assert created.wsgi_request.sensitive_post_parameters == ("password1", "password2")
    password_set = admin_client.post(url("set_password", bob.pk), {})
    assert password_set.wsgi_request.sensitive_post_parameters == (
        "new_password1",
        "new_password2",
    )


# Editing


def test_it_saves_changes_and_records_them(admin_client, bob, support):
    response = admin_client.post(
        url("edit", bob.pk),
        edit_data(bob, first_name="Robert", email="robert@example.com", groups=[support.pk]),
        follow=True,
    )
    assert "User bob saved." in response.content.decode()
    bob.refresh_from_db()
    assert (bob.first_name, bob.email) == ("Robert", "robert@example.com")
    assert list(bob.groups.all()) == [support]
    detail = AuditEvent.objects.get(action="user.changed").detail
    assert "first name (empty) → Robert" in detail
    assert "bob@example.com → robert@example.com" in detail
    assert "groups (none) → Support" in detail


def test_administrative_rights_and_the_staff_flag_change_together(admin_client, bob):
    admin_client.post(url("edit", bob.pk), edit_data(bob, is_superuser="on"))
    bob.refresh_from_db()
    assert bob.is_superuser and bob.is_staff
    admin_client.post(url("edit", bob.pk), edit_data(bob, is_superuser=False))
    bob.refresh_from_db()
    assert not bob.is_superuser and not bob.is_staff
    details = [e.detail for e in AuditEvent.objects.filter(action="user.changed").order_by("id")]
    assert details == [
        "Changed user bob: administrative rights no → yes.",
        "Changed user bob: administrative rights yes → no.",
    ]


def test_saving_without_changes_records_nothing(admin_client, bob):
    response = admin_client.post(url("edit", bob.pk), edit_data(bob), follow=True)
    assert "Nothing changed for user bob." in response.content.decode()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"username": "ADMIN"}, "The user name ADMIN is already taken; choose another one."),
        ({"username": "bob smith"}, "Enter a valid username."),
        ({"email": "bob@"}, "Enter a valid email address."),
    ],
)
def test_it_rejects_bad_edits_and_saves_nothing(admin_client, bob, changes, message):
    response = admin_client.post(url("edit", bob.pk), edit_data(bob, first_name="X", **changes))
    assert response.status_code == 200
    page = errors(response)
    assert message in page
    assert "<title>User bob · Appliance</title>" in page
    stored = User.objects.get(pk=bob.pk)
    assert (stored.username, stored.first_name, stored.email) == ("bob", "", "bob@example.com")
    assert not AuditEvent.objects.exists()


def test_an_administrator_can_demote_and_deactivate_another_administrator(admin_client):
    other = make_user("second", admin=True)
    admin_client.post(url("edit", other.pk), edit_data(other, is_superuser=False))
    admin_client.post(url("deactivate", other.pk))
    other.refresh_from_db()
    assert not other.is_superuser and not other.is_active


# Keeping the site administrable


def test_it_refuses_to_let_an_administrator_remove_their_own_rights(admin_client, admin_user):
    make_user("second", admin=True)
    response = admin_client.post(
        url("edit", admin_user.pk), edit_data(admin_user, is_superuser=False, first_name="Ann")
    )
    assert response.status_code == 200
    assert (
        "You cannot remove your own administrative rights. Ask another administrator to do it."
        in errors(response)
    )
    stored = User.objects.get(pk=admin_user.pk)
    assert stored.is_superuser and stored.is_staff and stored.first_name == ""
    assert not AuditEvent.objects.exists()


def test_it_refuses_to_let_an_administrator_deactivate_themselves_in_the_form(
    admin_client, admin_user
):
    make_user("second", admin=True)
    response = admin_client.post(url("edit", admin_user.pk), edit_data(admin_user, is_active=False))
    assert "You cannot deactivate your own account." in errors(response)
    assert User.objects.get(pk=admin_user.pk).is_active
    assert not AuditEvent.objects.exists()


def test_it_refuses_to_let_an_administrator_deactivate_themselves_with_the_button(
    admin_client, admin_user
):
    make_user("second", admin=True)
    response = admin_client.post(url("deactivate", admin_user.pk))
    assert response.status_code == 200
    assert 'data-testid="status-error"' in errors(response)
    assert "You cannot deactivate your own account." in errors(response)
    assert User.objects.get(pk=admin_user.pk).is_active
    assert not AuditEvent.objects.exists()


def test_the_only_administrator_is_told_to_appoint_another_one_first(admin_client, admin_user):
    make_user("retired", admin=True, is_active=False)
    response = admin_client.post(
        url("edit", admin_user.pk), edit_data(admin_user, is_superuser=False)
    )
    assert (
        "There is no other active administrator yet: give another user administrative rights"
        in (errors(response))
    )
    assert User.objects.get(pk=admin_user.pk).is_superuser


def test_it_refuses_to_deactivate_the_last_administrator(admin_user, regular_user):
    """Another administrator is always active while one edits; the rule guards the case where
    the actor lost their own rights meanwhile (a concurrent edit), seen here from the form."""
    form = DeactivateUserForm({}, actor=regular_user, user=admin_user)
    assert not form.is_valid()
    assert form.non_field_errors() == [
        "Cannot deactivate admin: they are the only active administrator, and the site would be "
        "left without one. Give another user administrative rights first."
    ]


def test_it_refuses_to_demote_the_last_administrator(admin_user, regular_user):
    form = UserEditForm(edit_data(admin_user, is_superuser=False), instance=admin_user, actor=None)
    assert not form.is_valid()
    assert form.errors["is_superuser"] == [
        "Cannot remove the administrative rights of admin: they are the only active "
        "administrator, and the site would be left without one. Give another user "
        "administrative rights first."
    ]
    assert User.objects.get(pk=admin_user.pk).is_superuser


# Passwords


def test_it_sets_a_new_password(admin_client, bob):
    response = admin_client.post(
        url("set_password", bob.pk),
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    assert "New password of user bob set." in response.content.decode()
    assert can_log_in("bob", NEW_PASSWORD)
    assert not can_log_in("bob", DEFAULT_PASSWORD)
    event = AuditEvent.objects.get(action="user.password_set")
    assert event.detail == "Set a new password for user bob."


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("short", "short", "This password is too short."),
        ("bob@example.com1", "bob@example.com1", "The password is too similar to the"),
        (NEW_PASSWORD, NEW_PASSWORD + "!", "The two entries differ; type the same password twice."),
        ("", "", "This field is required."),
    ],
)
def test_it_rejects_a_bad_new_password_and_keeps_the_old_one(
    admin_client, bob, first, second, message
):
    response = admin_client.post(
        url("set_password", bob.pk), {"new_password1": first, "new_password2": second}
    )
    assert response.status_code == 200
    assert message in errors(response)
    assert can_log_in("bob", DEFAULT_PASSWORD)
    assert not AuditEvent.objects.exists()


def test_an_administrator_setting_their_own_password_stays_logged_in(admin_client, admin_user):
    admin_client.post(
        url("set_password", admin_user.pk),
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert admin_client.get(LIST).status_code == 200
    assert can_log_in("admin", NEW_PASSWORD)


# Deactivating and reactivating


def test_the_edit_page_offers_a_confirmed_deactivation(admin_client, bob):
    page = admin_client.get(url("edit", bob.pk)).content.decode()
    assert 'data-testid="deactivate-confirm"' in page
    assert url("deactivate", bob.pk) in page


def test_it_deactivates_a_user_who_is_then_logged_out_and_cannot_log_in(
    admin_client, user_client, regular_user
):
    assert user_client.get(reverse("appliance:status")).status_code == 200
    response = admin_client.post(url("deactivate", regular_user.pk), follow=True)
    assert "User rep deactivated: they can no longer log in." in response.content.decode()
    assert not User.objects.get(pk=regular_user.pk).is_active
    assert user_client.get(reverse("appliance:status")).status_code == 302
    assert not can_log_in("rep", DEFAULT_PASSWORD)
    assert AuditEvent.objects.get(action="user.deactivated").detail == "Deactivated user rep."


def test_deactivating_an_inactive_user_records_nothing(admin_client):
    gone = make_user("gone", is_active=False)
    response = admin_client.post(url("deactivate", gone.pk), follow=True)
    assert "User gone was already inactive." in response.content.decode()
    assert not AuditEvent.objects.exists()


def test_it_reactivates_a_user(admin_client):
    gone = make_user("gone", is_active=False)
    assert 'data-testid="reactivate"' in admin_client.get(url("edit", gone.pk)).content.decode()
    response = admin_client.post(url("reactivate", gone.pk), follow=True)
    assert "User gone reactivated: they can log in again." in response.content.decode()
    assert can_log_in("gone", DEFAULT_PASSWORD)
    assert AuditEvent.objects.get(action="user.reactivated").detail == "Reactivated user gone."


def test_actions_on_a_missing_user_give_404(admin_client):
    for name in ("edit", "set_password"):
        assert admin_client.get(url(name, 999)).status_code == 404
    for name in ("deactivate", "reactivate"):
        assert admin_client.post(url(name, 999)).status_code == 404


# Groups


def view_report() -> Permission:
    return Permission.objects.get(codename="view_report")


def test_it_creates_a_group_with_permissions(admin_client):
    response = admin_client.post(
        GROUP_CREATE, {"name": "Auditors", "permissions": [view_report().pk]}, follow=True
    )
    assert "Group Auditors created." in response.content.decode()
    group = Group.objects.get(name="Auditors")
    assert list(group.permissions.all()) == [view_report()]
    detail = AuditEvent.objects.get(action="group.created").detail
    assert detail == "Created group Auditors with permissions: appliance.view_report."


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("support", "A group named support already exists; choose another name."),
        ("", "This field is required."),
    ],
)
def test_it_rejects_a_bad_group_name_and_saves_nothing(admin_client, support, name, message):
    response = admin_client.post(GROUP_CREATE, {"name": name})
    assert response.status_code == 200
    assert message in errors(response)
    assert Group.objects.count() == 1
    assert not AuditEvent.objects.exists()


def test_it_renames_a_group_and_changes_its_permissions(admin_client, support):
    change_report = Permission.objects.get(codename="change_report")
    support.permissions.add(change_report)
    response = admin_client.post(
        url("group_edit", support.pk),
        {"name": "Helpdesk", "permissions": [view_report().pk]},
        follow=True,
    )
    assert "Group Helpdesk saved." in response.content.decode()
    support.refresh_from_db()
    assert support.name == "Helpdesk"
    assert list(support.permissions.all()) == [view_report()]
    assert AuditEvent.objects.get(action="group.changed").detail == (
        "Changed group Helpdesk: name Support → Helpdesk; permissions added: "
        "appliance.view_report; permissions removed: appliance.change_report."
    )


def test_the_group_list_counts_members_and_permissions(admin_client, support, bob, regular_user):
    support.user_set.add(bob, regular_user)
    support.permissions.add(view_report())
    page = admin_client.get(GROUPS).content.decode()
    assert 'data-testid="group-name">Support</a>' in page
    assert "<td>2</td>" in page and "<td>1</td>" in page
