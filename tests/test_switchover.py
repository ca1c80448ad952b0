"""While Become Primary pulls a final sync, the primary takes no changes."""

import re

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse

from appliance.models import Report
from failover.models import FailoverState, Role
from tests.conftest import DEFAULT_PASSWORD, paired_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def switching(db):
    paired_as(Role.PRIMARY)
    FailoverState.objects.filter(pk=1).update(switching_over=True)


def test_a_non_administrator_cannot_log_in_and_sees_why(anon_client, regular_user, switching):
    response = anon_client.post(
        "/login", {"username": regular_user.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 503
    assert "Switching over" in response.content.decode()
    assert response["Retry-After"] == "30"


def test_wrong_passwords_get_the_same_answer_and_count_whatever_the_name(
    anon_client, admin_user, regular_user, switching
):
    answers = {}
    for name in ("admin", regular_user.username, "nobody"):
        client = Client(REMOTE_ADDR="127.0.0.5")
        response = client.post("/login", {"username": name, "password": "wrong"})
        page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
        page = page.replace(f'value="{name}"', "")  # the name typed, shown again
        answers[name] = (response.status_code, page)
    assert answers["admin"] == answers[regular_user.username] == answers["nobody"]
    assert answers["admin"][0] == 200
    counted = dict(AccessAttempt.objects.values_list("username", "failures_since_start"))
    assert counted == {"admin": 1, regular_user.username: 1, "nobody": 1}


def test_an_administrator_can_log_in_and_look(anon_client, admin_user, switching):
    response = anon_client.post("/login", {"username": "admin", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert anon_client.get(reverse("appliance:status")).status_code == 200


def test_no_write_is_accepted_even_from_an_administrator(admin_client, switching):
    response = admin_client.post(reverse("appliance:configuration"), {"site_name": "Changed"})
    assert response.status_code == 503
    token_response = admin_client.post(
        "/api/v1/reports/",
        {"representative": "r", "customer_name": "c", "started_at": "2026-01-01T00:00:00Z",
         "outcome": "resolved"},
        content_type="application/json",
    )  # fmt: skip
    assert token_response.status_code == 503
    assert not Report.objects.exists()


def test_signed_in_users_without_administrative_rights_see_the_switching_page(
    user_client, switching
):
    assert user_client.get(reverse("appliance:reports:list")).status_code == 503


def test_health_checks_still_answer(anon_client, switching):
    assert anon_client.get("/check_health").status_code in (200, 500)


# The final sync -----------------------------------------------------------------------


class Worker:
    """Stands in for the sync worker: every run it is given completes at once."""

    def __init__(self, outcome="succeeded"):
        self.outcome = outcome
        self.asked = []

    def request_sync(self, trigger, *, by):
        from failover.models import SyncRun

        run, created = SyncRun.request(trigger, by=by)
        self.asked.append((run.pk, created))
        run.finish(self.outcome, "" if self.outcome == "succeeded" else "the link was cut")
        return run, created


def test_a_sync_running_at_the_freeze_is_not_taken_for_the_final_sync(db, monkeypatch, peer_redis):
    from django.utils import timezone

    from failover import switchover
    from failover.models import SyncRun
    from failover.sync import progress

    # Started before the freeze: it may not hold the writes of the last moments. Its
    # worker is alive (its pulse beats), so it is waited for, not taken for dead.
    earlier = SyncRun.objects.create(
        trigger=SyncRun.Trigger.SCHEDULE, status=SyncRun.Status.RUNNING, started_at=timezone.now()
    )
    progress.touch(earlier.pk)
    worker = Worker()
    monkeypatch.setattr(switchover, "runs", worker)
    switchover._final_sync()
    final = SyncRun.objects.latest("id")
    assert worker.asked == [(earlier.pk, False), (final.pk, True)]
    assert final.trigger == SyncRun.Trigger.BECOME_PRIMARY


def test_a_failed_final_sync_keeps_the_roles_and_says_why(db, monkeypatch):
    from failover import switchover

    monkeypatch.setattr(switchover, "runs", Worker(outcome="failed"))
    with pytest.raises(switchover.RoleError, match="did not succeed \\(the link was cut\\)"):
        switchover._final_sync()
