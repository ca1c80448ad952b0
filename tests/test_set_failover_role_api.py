"""set_failover_role through the Command API (XML) and /api/v1/ (JSON), on one site.

The other site is played by a stand-in for the one door to it (PeerClient.request):
it answers, refuses, or cannot be reached. The final sync's worker is a recorder of
what was queued. Two real sites run BeyondTrust's examples in
tests/test_command_api_sites.py.
"""

from __future__ import annotations

import pytest
from django.test import Client

from appliance.models import ApiToken
from failover import switchover
from failover.models import FailoverEvent, FailoverState, Role
from failover.peer import HELLO, ROLE, PeerClient, PeerError, PeerResponse
from tests.command_api import ROLE_CHANGED, SYNC_STARTED, error_text, success_text
from tests.conftest import bearer_client, make_api_account, paired_as

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("peer_redis")]

COMMAND = "/api/command"
FORM = "application/x-www-form-urlencoded"


class OtherSite:
    """Stands in for the other site: records the calls, answers as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.unreachable = False
        self.refusal = ""

    def request(self, client: PeerClient, method: str, path: str, *, json=None) -> PeerResponse:
        self.calls.append((method, path, json))
        if self.unreachable:
            raise PeerError(
                "Could not reach 192.0.2.20:443: connection timed out after 5 s.",
                transient=True,
                reason="timeout",
            )
        if self.refusal:
            raise PeerError(
                f"The peer at 192.0.2.20:443 refused POST {path}: HTTP 409 ({self.refusal})",
                transient=False,
                reason="rejected",
                status=409,
            )
        if path == HELLO:
            return PeerResponse(200, {"role": "primary", "holds_shared_ip": False})
        return PeerResponse(202, {})


@pytest.fixture
def other_site(monkeypatch) -> OtherSite:
    site = OtherSite()
    monkeypatch.setattr(
        PeerClient, "request", lambda client, method, path, json=None: site.request(
            client, method, path, json=json
        )
    )  # fmt: skip
    return site


@pytest.fixture
def queued(monkeypatch) -> list[tuple]:
    """What was queued for the worker (its role changes), instead of running them."""
    calls: list[tuple] = []
    monkeypatch.setattr(
        "failover.jobs.change_role", lambda *args, **kwargs: calls.append((*args, kwargs))
    )
    monkeypatch.setattr("failover.jobs.follow_role", lambda **kwargs: None)
    return calls


@pytest.fixture
def runbook(db) -> Client:
    """A full API account's bearer token, as a failover runbook holds it."""
    return bearer_client(*make_api_account("runbook", full=True))


def set_role(client: Client, **params: str):
    return client.get(COMMAND, {"action": "set_failover_role", **params})


def role() -> str:
    return FailoverState.load().role


def test_role_primary_with_data_sync_first_starts_the_final_sync_in_the_worker(
    runbook, other_site, queued
):
    paired_as(Role.BACKUP)
    response = set_role(runbook, role="primary", data_sync_first="1")
    assert response.status_code == 202
    assert success_text(response.content) == SYNC_STARTED
    [(action, actor, sync_first, kwargs)] = queued
    assert (action, actor, sync_first) == ("become_primary", "runbook (API account)", True)
    assert kwargs["token"]
    assert other_site.calls == [("GET", HELLO, None)]
    assert role() == "backup", "the roles change when the final sync has succeeded"


def test_role_primary_with_data_sync_first_is_refused_when_the_primary_cannot_be_reached(
    runbook, other_site, queued
):
    paired_as(Role.BACKUP)
    other_site.unreachable = True
    response = set_role(runbook, role="primary", data_sync_first="1")
    assert response.status_code == 409
    assert error_text(response.content) == (
        "The final data sync needs the primary, site-b, which cannot be reached: Could not "
        "reach 192.0.2.20:443: connection timed out after 5 s. Nothing was changed. Without "
        "data_sync_first this site takes over without it."
    )
    assert queued == []
    assert role() == "backup"


def test_role_primary_takes_over_at_once_and_tells_the_old_primary(runbook, other_site, queued):
    paired_as(Role.BACKUP)
    response = set_role(runbook, role="primary")
    assert response.status_code == 200
    assert success_text(response.content) == ROLE_CHANGED
    assert role() == "primary"
    assert [call[:2] for call in other_site.calls] == [("POST", ROLE), ("GET", HELLO)]
    assert other_site.calls[0][2]["action"] == "step_down"


def test_role_primary_takes_over_when_the_old_primary_is_gone(runbook, other_site, queued):
    paired_as(Role.BACKUP)
    other_site.unreachable = True
    response = set_role(runbook, role="primary")
    assert success_text(response.content) == ROLE_CHANGED
    assert role() == "primary"


def test_role_backup_with_force_steps_down_alone_when_the_other_site_cannot_be_reached(
    runbook, other_site, queued
):
    paired_as(Role.PRIMARY)
    other_site.unreachable = True
    response = set_role(runbook, role="backup", force="1")
    assert response.status_code == 200
    assert success_text(response.content) == ROLE_CHANGED
    assert role() == "backup"


def test_role_backup_with_force_and_data_sync_first_steps_down_alone_when_it_must(
    runbook, other_site, queued
):
    paired_as(Role.PRIMARY)
    other_site.unreachable = True
    response = set_role(runbook, role="backup", force="1", data_sync_first="1")
    assert success_text(response.content) == ROLE_CHANGED
    assert role() == "backup"


def test_role_backup_without_force_is_refused_when_the_other_site_cannot_be_reached(
    runbook, other_site, queued
):
    paired_as(Role.PRIMARY)
    other_site.unreachable = True
    response = set_role(runbook, role="backup")
    assert response.status_code == 409
    assert error_text(response.content) == (
        "The other site could not take over: Could not reach 192.0.2.20:443: connection timed "
        "out after 5 s. This site stays primary. Use Force to step down anyway (the service "
        "then has no primary)."
    )
    assert role() == "primary"


def test_role_backup_is_refused_even_with_force_when_the_other_site_says_no(
    runbook, other_site, queued
):
    paired_as(Role.PRIMARY)
    other_site.refusal = "A role change is already running on site-b"
    response = set_role(runbook, role="backup", force="1")
    assert response.status_code == 409
    assert error_text(response.content).startswith("The other site refused to take over:")
    assert role() == "primary"


def test_role_backup_with_data_sync_first_asks_the_other_site_to_sync_then_take_over(
    runbook, other_site, queued
):
    paired_as(Role.PRIMARY)
    response = set_role(runbook, role="backup", data_sync_first="1")
    assert response.status_code == 202
    assert success_text(response.content) == SYNC_STARTED
    assert other_site.calls == [("POST", ROLE, {"action": "become_primary", "sync_first": True})]
    assert role() == "primary", "this site steps down when the other asks, after its sync"


def test_role_backup_waits_until_the_other_site_has_taken_over(
    runbook, other_site, queued, monkeypatch
):
    paired_as(Role.PRIMARY)
    answer = other_site.request

    def the_other_site_takes_over(client, method, path, *, json=None):
        # As the other site's worker does: it asks this site to step down.
        response = answer(client, method, path, json=json)
        switchover.accept("step_down", epoch=FailoverState.load().epoch + 1, sync_first=False)
        return response

    monkeypatch.setattr(other_site, "request", the_other_site_takes_over)
    response = set_role(runbook, role="backup")
    assert response.status_code == 200
    assert success_text(response.content) == ROLE_CHANGED
    assert role() == "backup"


def test_role_backup_says_when_the_other_site_does_not_take_over_in_time(
    runbook, other_site, queued, monkeypatch
):
    paired_as(Role.PRIMARY)
    monkeypatch.setattr(switchover, "HANDOVER_WAIT_SECONDS", 1)
    response = set_role(runbook, role="backup")
    assert response.status_code == 504
    assert error_text(response.content).startswith(
        "site-b accepted the handover but has not taken over within 1 s; this site is still "
        "primary."
    )
    assert role() == "primary"


@pytest.mark.parametrize(
    ("paired", "params", "status", "message"),
    [
        (None, {"role": "primary"}, 409, "Failover is not configured on this site"),
        (Role.PRIMARY, {"role": "primary"}, 409, "This site is already primary."),
        (Role.BACKUP, {"role": "backup", "force": "1"}, 409, "This site is already backup."),
        (Role.BACKUP, {"role": "leader"}, 400, "role must be primary or backup, not 'leader'."),
        (Role.BACKUP, {}, 400, "role must be primary or backup, not ''."),
        (Role.BACKUP, {"role": "primary", "force": "yes please"}, 400, "force must be 0 or 1"),
        (Role.BACKUP, {"role": "primary", "data_sync_first": "2"}, 400, "data_sync_first must"),
    ],
)
def test_a_request_that_cannot_be_done_is_refused_and_changes_nothing(
    runbook, other_site, queued, paired, params, status, message
):
    if paired:
        paired_as(paired)
    before = role()
    response = set_role(runbook, **params)
    assert response.status_code == status
    assert error_text(response.content).startswith(message)
    assert queued == [] and other_site.calls == []
    assert role() == before


def test_a_second_role_change_is_refused_while_the_first_is_queued(runbook, other_site, queued):
    paired_as(Role.BACKUP)
    assert set_role(runbook, role="primary", data_sync_first="1").status_code == 202
    response = set_role(runbook, role="primary")
    assert response.status_code == 409
    assert error_text(response.content).startswith(
        "A role change is already queued for the worker on test-site: Become Primary, asked by "
        "runbook (API account) at "
    )
    assert len(queued) == 1


def test_a_role_change_is_refused_while_the_other_site_pulls_its_final_sync(
    runbook, other_site, queued
):
    paired_as(Role.PRIMARY)
    FailoverState.objects.filter(pk=1).update(switching_over=True)
    response = set_role(runbook, role="backup", force="1")
    assert response.status_code == 409
    assert error_text(response.content).startswith(
        "A switchover is running: site-b is pulling a final data sync from this site"
    )
    assert other_site.calls == []


def test_the_worker_drops_a_role_change_it_started_too_late(other_site, queued):
    paired_as(Role.BACKUP)
    switchover.start("become_primary", "runbook (API account)", True)
    [(_, _, _, kwargs)] = queued
    # The claim lapsed before the worker got to it: another change may have run meanwhile.
    switchover._swap_claim(kwargs["token"], "", 0)
    switchover.change_role("become_primary", "runbook (API account)", True, kwargs["token"])
    assert role() == "backup"
    assert other_site.calls == []
    event = FailoverEvent.objects.first()
    assert event.message.startswith(
        "Become Primary did not happen: the worker did not start it within 60 s"
    )


def test_the_worker_releases_the_claim_when_it_is_done(other_site, queued):
    paired_as(Role.BACKUP)
    other_site.unreachable = True
    switchover.start("become_primary", "admin", True)
    [(_, _, _, kwargs)] = queued
    switchover.change_role("become_primary", "admin", True, kwargs["token"])
    assert "The final sync needs the primary" in FailoverEvent.objects.first().message
    assert switchover.running_change() == ""


def test_a_post_form_works_as_a_get(runbook, other_site, queued):
    paired_as(Role.BACKUP)
    response = runbook.post(
        COMMAND, "action=set_failover_role&role=primary&data_sync_first=1", content_type=FORM
    )
    assert response.status_code == 202
    assert success_text(response.content) == SYNC_STARTED


def test_a_read_only_api_account_may_not_change_roles(other_site, queued):
    paired_as(Role.BACKUP)
    monitor = bearer_client(*make_api_account("monitoring"))
    response = set_role(monitor, role="primary")
    assert response.status_code == 403
    assert error_text(response.content) == (
        "set_failover_role needs an API account with full access (or an administrator's API "
        "token); this one is read-only."
    )
    assert role() == "backup" and other_site.calls == []


def test_an_administrators_api_token_may_change_roles(admin_user, other_site, queued):
    paired_as(Role.PRIMARY)
    other_site.unreachable = True
    client = Client(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(admin_user)}")
    response = set_role(client, role="backup", force="1")
    assert success_text(response.content) == ROLE_CHANGED
    assert FailoverEvent.objects.filter(actor="admin", kind="role_changed").exists()


def test_the_json_api_answers_the_same(runbook, other_site, queued):
    paired_as(Role.BACKUP)
    response = runbook.post(
        "/api/v1/failover/role/",
        {"role": "primary", "data_sync_first": True},
        content_type="application/json",
    )
    assert response.status_code == 202
    assert response.json() == {"detail": SYNC_STARTED}
    refused = runbook.post(
        "/api/v1/failover/role/", {"role": "primary"}, content_type="application/json"
    )
    assert refused.status_code == 409
    assert refused.json()["reason"] == "running"


def test_the_json_api_refuses_read_only_api_accounts(other_site, queued):
    paired_as(Role.BACKUP)
    monitor = bearer_client(*make_api_account("monitoring"))
    response = monitor.post(
        "/api/v1/failover/role/", {"role": "primary"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert queued == []
