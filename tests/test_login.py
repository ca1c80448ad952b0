import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from appliance.models import SiteSettings
from tests.conftest import DEFAULT_PASSWORD, make_user

LOGIN = reverse("login")
LOGOUT = reverse("logout")
STATUS = reverse("appliance:status")
BAD_LOGIN = "Please enter a correct username and password."

pytestmark = pytest.mark.django_db


def log_in(client: Client, password: str = DEFAULT_PASSWORD, username: str = "rep", **extra):
    return client.post(LOGIN, {"username": username, "password": password, **extra})


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_login_page_shows_the_site_name_and_banner(anon_client):
    SiteSettings(site_name="Acme Support", login_banner="Authorised use only.").save()
    page = anon_client.get(LOGIN).content.decode()
    assert "Acme Support" in page
    assert "test-site" in page
    assert 'data-testid="login-banner">Authorised use only.' in page


def test_a_good_login_goes_to_the_status_page(anon_client, regular_user):
    response = log_in(anon_client)
    assert response.status_code == 302
    assert response["Location"] == "/status/"
    assert is_logged_in(anon_client)
    assert anon_client.get(STATUS).status_code == 200


def test_it_follows_a_local_next_address_but_not_a_foreign_one(regular_user):
    local = Client()
    assert log_in(local, next="/reports/")["Location"] == "/reports/"
    foreign = Client()
    assert log_in(foreign, next="https://evil.example.net/")["Location"] == "/status/"


def test_a_signed_in_user_opening_login_goes_to_status(user_client):
    response = user_client.get(LOGIN)
    assert response.status_code == 302
    assert response["Location"] == "/status/"


def test_a_bad_password_shows_an_error_and_logs_nobody_in(anon_client, regular_user):
    response = log_in(anon_client, "not the password")
    assert response.status_code == 200
    assert BAD_LOGIN in response.content.decode()
    assert not is_logged_in(anon_client)


def test_an_unknown_user_gets_the_same_error(anon_client):
    response = log_in(anon_client, username="nobody")
    assert BAD_LOGIN in response.content.decode()
    assert not is_logged_in(anon_client)


def test_an_inactive_user_cannot_log_in(anon_client):
    make_user("gone", is_active=False)
    response = log_in(anon_client, username="gone")
    assert BAD_LOGIN in response.content.decode()
    assert not is_logged_in(anon_client)


def test_after_the_failure_limit_the_address_is_locked_out_even_with_the_right_password(
    anon_client, regular_user
):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert BAD_LOGIN in log_in(anon_client, "wrong").content.decode()
    log_in(anon_client, "wrong")
    response = log_in(anon_client)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed logins" in page
    assert 'data-testid="locked-out"' in page
    assert not is_logged_in(anon_client)
    assert anon_client.get(STATUS).status_code == 302


def test_the_lockout_is_per_address(regular_user):
    locked = Client(REMOTE_ADDR="127.0.0.2")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(locked, "wrong", username=f"guess{attempt}")
    assert log_in(locked).status_code == 429
    other = Client(REMOTE_ADDR="127.0.0.3")
    assert log_in(other)["Location"] == "/status/"


def test_the_attacked_account_is_locked_from_every_address_and_no_other(regular_user):
    make_user("colleague")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(REMOTE_ADDR=f"127.0.1.{attempt + 1}"), "wrong")
    assert log_in(Client(REMOTE_ADDR="127.0.2.1")).status_code == 429
    assert log_in(Client(REMOTE_ADDR="127.0.2.1"), username="colleague")["Location"] == "/status/"


def test_a_successful_login_resets_the_failure_count(regular_user):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")
    assert log_in(client).status_code == 302
    client.post(LOGOUT)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "wrong")
    assert log_in(client).status_code == 302


def test_logout_needs_a_post_and_ends_the_session(user_client):
    assert user_client.get(LOGOUT).status_code == 405
    assert is_logged_in(user_client)
    response = user_client.post(LOGOUT)
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert not is_logged_in(user_client)
    assert user_client.get(STATUS)["Location"].startswith(LOGIN)


def test_login_refuses_a_post_without_csrf_token(regular_user):
    client = Client(enforce_csrf_checks=True)
    assert log_in(client).status_code == 403
    assert not is_logged_in(client)


def test_login_accepts_a_post_with_the_csrf_token_from_the_form(regular_user):
    client = Client(enforce_csrf_checks=True)
    client.get(LOGIN)
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert log_in(client, csrfmiddlewaretoken=token)["Location"] == "/status/"


def test_logout_refuses_a_post_without_csrf_token(regular_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(regular_user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.post(LOGOUT).status_code == 403
    assert is_logged_in(client)
