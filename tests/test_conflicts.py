"""Both sites claiming the same role: when it is recorded, and when the banner shows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from failover import conflicts as conflict_rules
from failover import roles
from failover.models import FailoverEvent, FailoverState, Role
from tests.conftest import paired_as

pytestmark = pytest.mark.django_db


def paired(role: Role) -> FailoverState:
    return paired_as(role, peer_host="127.0.0.1")


def peer_says(role: Role) -> None:
    """A check of the peer found it in `role` at this site's epoch; the site settles."""
    state = FailoverState.load()
    hello = {"role": role, "epoch": state.epoch}
    state.record_peer_check(reachable=True, role=hello["role"], epoch=hello["epoch"])
    roles.settle_roles(state, hello)


def conflicts() -> int:
    return FailoverEvent.objects.filter(kind=FailoverEvent.Kind.CONFLICT).count()


def banner_shown(client) -> bool:
    return b'data-testid="conflict-banner"' in client.get(reverse("failover:failover")).content


def test_a_peer_claiming_this_sites_role_is_recorded_once_and_shows_the_banner(admin_client):
    paired(Role.PRIMARY)
    peer_says(Role.PRIMARY)
    peer_says(Role.PRIMARY)

    assert conflicts() == 1
    assert roles.conflict_reported()
    assert banner_shown(admin_client)


def test_the_banner_goes_once_the_peer_is_seen_in_the_other_role(admin_client):
    paired(Role.PRIMARY)
    peer_says(Role.PRIMARY)

    # Fixed on the other site: it became backup, and this site made no role change.
    peer_says(Role.BACKUP)

    assert not roles.conflict_reported()
    assert not banner_shown(admin_client)


def test_the_banner_comes_back_when_the_peer_claims_this_sites_role_again(admin_client):
    paired(Role.BACKUP)
    peer_says(Role.BACKUP)
    peer_says(Role.PRIMARY)
    assert not banner_shown(admin_client)

    peer_says(Role.BACKUP)

    assert roles.conflict_reported()
    assert banner_shown(admin_client)


def peer_at(role: Role, epoch: int) -> None:
    """A check of the peer found it in `role` at `epoch`; the site settles."""
    state = FailoverState.load()
    state.record_peer_check(reachable=True, role=role, epoch=epoch)
    roles.settle_roles(state, {"role": role, "epoch": epoch})


def stepped_down(seconds_ago: float) -> int:
    """This site stepped down for its peer under a new epoch `seconds_ago` seconds ago."""
    state = paired(Role.BACKUP)
    FailoverState.objects.filter(pk=1).update(epoch=state.epoch + 1)
    FailoverEvent.objects.create(
        kind=FailoverEvent.Kind.ROLE_CHANGED,
        message="This site is now backup: the peer is taking over.",
        at=timezone.now() - dt.timedelta(seconds=seconds_ago),
    )
    return state.epoch


def test_a_handover_under_way_is_no_conflict_on_the_site_that_stepped_down(admin_client):
    old_epoch = stepped_down(seconds_ago=3)

    peer_at(Role.BACKUP, old_epoch)

    assert conflicts() == 0
    assert not banner_shown(admin_client)


def test_a_handover_under_way_is_no_conflict_on_the_site_taking_over():
    state = paired(Role.BACKUP)

    peer_at(Role.BACKUP, state.epoch + 1)

    assert conflicts() == 0


def test_a_handover_that_never_completes_is_a_conflict_once_its_time_is_up(admin_client):
    old_epoch = stepped_down(seconds_ago=roles.HANDOVER_SECONDS + 1)

    peer_at(Role.BACKUP, old_epoch)

    assert conflicts() == 1
    assert banner_shown(admin_client)


class ConflictingPeer:
    """The other site, claiming primary at this site's epoch; it records what it is told."""

    def __init__(self, *, holds_shared_ip: bool = False) -> None:
        self.hello = {"role": Role.PRIMARY, "epoch": FailoverState.load().epoch}
        self.hello["holds_shared_ip"] = holds_shared_ip
        self.told: list[tuple[dict, int]] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get(self, _path):
        return self.hello

    def post(self, _path, payload):
        # What this site's own epoch was when the other site was told.
        self.told.append((payload, FailoverState.load().epoch))
        return {}


def test_fix_this_error_tells_the_loser_before_the_winner_raises_its_epoch(monkeypatch):
    """The loser exports its data as it yields; had the winner taken the new epoch first,
    the loser's next peer check would make it backup without that export."""
    paired(Role.PRIMARY)
    before = FailoverState.load().epoch
    peer = ConflictingPeer()
    monkeypatch.setattr("failover.peer.client_for_state", lambda *a, **k: peer)
    monkeypatch.setattr("failover.shared_ip.holds_shared_ip", lambda: True)

    said = conflict_rules.fix_conflict("admin")

    assert peer.told == [({"action": "yield", "epoch": before + 1}, before)]
    assert FailoverState.load().epoch == before + 1
    assert said == f"This site is primary (epoch {before + 1}); site-b is backup."


def test_the_winner_takes_the_epoch_the_loser_yielded_under_though_a_check_saw_it(
    monkeypatch,
):
    """A peer check may run between the loser's yield and the winner's promotion, and see
    the loser backup at the new epoch: the winner still takes that epoch, not the next."""
    paired(Role.PRIMARY)
    before = FailoverState.load().epoch
    peer = ConflictingPeer()

    def yields_and_is_checked(path, payload):
        ConflictingPeer.post(peer, path, payload)
        FailoverState.load().record_peer_check(
            reachable=True, role=Role.BACKUP, epoch=payload["epoch"]
        )
        return {}

    peer.post = yields_and_is_checked
    monkeypatch.setattr("failover.peer.client_for_state", lambda *a, **k: peer)
    monkeypatch.setattr("failover.shared_ip.holds_shared_ip", lambda: True)

    said = conflict_rules.fix_conflict("admin")

    state = FailoverState.load()
    assert (state.role, state.epoch, state.peer_epoch) == (Role.PRIMARY, before + 1, before + 1)
    assert said == f"This site is primary (epoch {before + 1}); site-b is backup."


def test_a_promotion_agreed_below_an_epoch_already_seen_goes_above_it():
    """Had the peer been seen at a higher epoch than the one agreed, the agreed one
    would not be above every epoch seen: the site goes above the highest instead."""
    paired(Role.BACKUP)
    state = FailoverState.load()
    state.record_peer_check(reachable=True, role=Role.BACKUP, epoch=state.epoch + 5)

    roles.promote("test", "admin", agreed=state.epoch + 1)

    assert FailoverState.load().epoch == state.epoch + 6


@pytest.mark.usefixtures("peer_redis")
def test_a_repeated_yield_is_answered_as_done_not_refused(settings):
    """The winner's request may be retried after the loser already yielded."""
    from security.models import PreSharedKey
    from tests.test_peer_authentication import KEY, send, signed

    settings.PEER_CLOCK_SKEW_SECONDS = 300
    PreSharedKey.store(KEY, by="test")
    paired(Role.PRIMARY)
    epoch = FailoverState.load().epoch + 1
    first = send(signed("POST", "/api/peer/v1/role", {"action": "yield", "epoch": epoch}))
    again = send(signed("POST", "/api/peer/v1/role", {"action": "yield", "epoch": epoch}))
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["role"] == Role.BACKUP
    stale = send(signed("POST", "/api/peer/v1/role", {"action": "yield", "epoch": epoch - 1}))
    assert stale.status_code == 409
    assert "is not newer than this site's" in stale.json()["detail"]


def test_a_primary_starting_after_its_backup_took_over_starts_as_backup(monkeypatch):
    paired(Role.PRIMARY)
    epoch = FailoverState.load().epoch
    peer = ConflictingPeer()
    peer.hello["epoch"] = epoch + 1  # it failed over while this site was down
    monkeypatch.setattr("failover.peer.client_for_state", lambda *a, **k: peer)

    said = roles.check_peer_on_start()

    state = FailoverState.load()
    assert (state.role, state.epoch) == (Role.BACKUP, epoch + 1)
    assert said == f"Starting as backup (epoch {epoch + 1}): site-b is primary now."


def test_a_primary_whose_peer_does_not_answer_starts_as_primary(monkeypatch):
    from failover.peer import PeerError

    paired(Role.PRIMARY)

    class Gone(ConflictingPeer):
        def get(self, _path):
            raise PeerError("connection refused", transient=True, reason="unreachable")

    monkeypatch.setattr("failover.peer.client_for_state", lambda *a, **k: Gone())
    assert roles.check_peer_on_start().endswith("site-b did not object.")
    assert FailoverState.load().role == Role.PRIMARY
