import pytest
from django.urls import reverse

from appliance.models import AuditEvent, SiteSettings

URL = reverse("appliance:configuration")

pytestmark = pytest.mark.django_db


def settings_data(**changes: object) -> dict:
    data = {
        "site_name": "Acme Support",
        "public_hostname": "support.example.com",
        "support_contact": "help@example.com",
        "time_zone": "Europe/Paris",
        "login_banner": "Authorised use only.",
        "report_retention_days": "90",
    }
    data.update(changes)
    return data


def test_it_sends_anonymous_users_to_login(anon_client):
    for response in (anon_client.get(URL), anon_client.post(URL, settings_data())):
        assert response.status_code == 302
        assert response["Location"].startswith("/login")
    assert not SiteSettings.objects.exists()


def test_it_forbids_users_without_administrative_rights(user_client):
    assert user_client.get(URL).status_code == 403
    assert user_client.post(URL, settings_data()).status_code == 403
    assert not SiteSettings.objects.exists()
    assert not AuditEvent.objects.exists()


def test_it_shows_the_current_settings_to_administrators(admin_client):
    SiteSettings(site_name="Helpdesk", public_hostname="help.example.com").save()
    response = admin_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="Helpdesk"' in page
    assert 'value="help.example.com"' in page


def test_it_saves_the_settings_and_says_so(admin_client):
    response = admin_client.post(URL, settings_data(), follow=True)
    assert "Site settings saved." in response.content.decode()
    stored = SiteSettings.objects.get()
    assert stored.pk == 1
    assert (stored.site_name, stored.public_hostname, stored.time_zone) == (
        "Acme Support",
        "support.example.com",
        "Europe/Paris",
    )
    assert stored.report_retention_days == 90
    assert stored.login_banner == "Authorised use only."


def test_saving_twice_keeps_one_row(admin_client):
    admin_client.post(URL, settings_data())
    admin_client.post(URL, settings_data(site_name="Renamed"))
    assert SiteSettings.objects.count() == 1
    assert SiteSettings.load().site_name == "Renamed"


def test_it_records_which_settings_changed(admin_client):
    admin_client.post(URL, settings_data())
    admin_client.post(URL, settings_data(support_contact="+1 555 0100"))
    events = list(AuditEvent.objects.filter(action="site_settings.changed").order_by("id"))
    assert len(events) == 2
    assert events[0].actor == "admin"
    assert events[0].site == "test-site"
    assert events[1].detail == "Changed: support_contact."


def test_it_normalises_the_public_host_name(admin_client):
    admin_client.post(URL, settings_data(public_hostname=" Support.Example.COM. "))
    assert SiteSettings.load().public_hostname == "support.example.com"


def test_an_empty_public_host_name_is_allowed(admin_client):
    admin_client.post(URL, settings_data(public_hostname=""))
    assert SiteSettings.objects.get().public_hostname == ""


@pytest.mark.parametrize(
    "hostname",
    [
        "support_desk.example.com",
        "-support.example.com",
        "support-.example.com",
        "support..example.com",
        "https://support.example.com",
        "x" * 64 + ".example.com",
    ],
)
def test_it_rejects_a_bad_public_host_name_and_saves_nothing(admin_client, hostname):
    response = admin_client.post(URL, settings_data(public_hostname=hostname))
    assert response.status_code == 200
    assert (
        "Enter a host name such as support.example.com: letters, digits and hyphens, "
        "separated by dots." in response.content.decode()
    )
    assert not SiteSettings.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "Select a valid choice."),
        ({"report_retention_days": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"site_name": ""}, "This field is required."),
    ],
)
def test_it_rejects_other_bad_input_and_keeps_the_saved_settings(admin_client, changes, message):
    admin_client.post(URL, settings_data())
    response = admin_client.post(URL, settings_data(**{"site_name": "Changed", **changes}))
    assert message in response.content.decode()
    assert SiteSettings.load().site_name == "Acme Support"
    assert AuditEvent.objects.count() == 1
