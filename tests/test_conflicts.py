"""Both sites claiming the same role: when it is recorded, and when the banner shows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from failover import services
from failover.models import FailoverEvent, FailoverState, Role

pytestmark = pytest.mark.django_db


def paired(role: Role) -> FailoverState:
    state = FailoverState.load()
    state.establish(
        role,
        epoch=state.epoch + 1,
        peer_name="site-b",
        peer_host="127.0.0.1",
        peer_port=443,
        peer_scheme="https",
        peer_fingerprint="",
    )
    return state


def peer_says(role: Role) -> None:
    """A check of the peer found it in `role` at this site's epoch; the site settles."""
    state = FailoverState.load()
    hello = {"role": role, "epoch": state.epoch}
    state.record_peer_check(reachable=True, role=hello["role"], epoch=hello["epoch"])
    services.settle_roles(state, hello)


def conflicts() -> int:
    return FailoverEvent.objects.filter(kind=FailoverEvent.Kind.CONFLICT).count()


def banner_shown(client) -> bool:
    return b'data-testid="conflict-banner"' in client.get(reverse("failover:failover")).content


def test_a_peer_claiming_this_sites_role_is_recorded_once_and_shows_the_banner(admin_client):
    paired(Role.PRIMARY)
    peer_says(Role.PRIMARY)
    peer_says(Role.PRIMARY)

    assert conflicts() == 1
    assert services.conflict_reported()
    assert banner_shown(admin_client)


def test_the_banner_goes_once_the_peer_is_seen_in_the_other_role(admin_client):
    paired(Role.PRIMARY)
    peer_says(Role.PRIMARY)

    # Fixed on the other site: it became backup, and this site made no role change.
    peer_says(Role.BACKUP)

    assert not services.conflict_reported()
    assert not banner_shown(admin_client)


def test_the_banner_comes_back_when_the_peer_claims_this_sites_role_again(admin_client):
    paired(Role.BACKUP)
    peer_says(Role.BACKUP)
    peer_says(Role.PRIMARY)
    assert not banner_shown(admin_client)

    peer_says(Role.BACKUP)

    assert services.conflict_reported()
    assert banner_shown(admin_client)
