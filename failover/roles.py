"""Role changes, and what a site does on learning its peer's role.

Every role change raises the epoch (compare-and-set on FailoverState), is an
event in the status history and an audit record, and is followed up on the
network queue (failover.takeover: the shared IP, the DNS swing, the hooks). A site
that learns of a higher epoch steps down; equal claims are a conflict for the
administrator (failover.conflicts).
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from appliance.models import AuditEvent
from failover import exports, jobs, peer
from failover.models import BackupSettings, FailoverEvent, FailoverState, Role, SyncCursor
from failover.peer import HELLO, PeerError

logger = logging.getLogger(__name__)

# How long a handover may leave both sites backup before it is a conflict: the old
# primary's step-down, its release of the shared IP, and the other site taking over.
HANDOVER_SECONDS = 120


class RoleError(Exception):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def _after_role_change(*, peer_checked: bool = False) -> None:
    transaction.on_commit(lambda: jobs.follow_role(peer_checked=peer_checked))


def promote(
    reason: str,
    actor: object,
    *,
    kind: str = FailoverEvent.Kind.ROLE_CHANGED,
    peer_checked: bool = False,
    agreed: int = 0,
) -> None:
    """This site becomes primary under a new epoch; the shared IP follows.

    `peer_checked`: the caller has just found the peer unreachable (the monitor),
    so the claim of the address does not wait to ask it again. The new epoch is
    above every one seen, or `agreed`: the epoch the peer has just yielded under.
    """
    with transaction.atomic():
        state = FailoverState.load()
        was = state.role
        state.promote(agreed=agreed)
        message = (
            f"{settings.APPLIANCE_NAME} became primary (was {was}, epoch {state.epoch}): {reason}"
        )
        FailoverEvent.record(kind, message, severity=FailoverEvent.Severity.WARNING, actor=actor)
        AuditEvent.record(actor, "failover.role_changed", message)
        _after_role_change(peer_checked=peer_checked)
    logger.warning("%s", message)


def demote(epoch: int, reason: str, actor: object, *, follow_from: dict | None = None) -> None:
    """This site becomes backup under `epoch`; it releases the shared IP.

    A primary first keeps, in an export, the changes its successor has not applied:
    the next sync replaces this site's data with the new primary's. Its cursor in
    the new primary's log starts again from nothing (a full sync), unless the new
    primary says where its log stands (`follow_from`: a handover) and this site has
    nothing the new primary lacks: then their data is the same, and this site follows
    the new primary's log from there.
    """
    unsent = 0
    if FailoverState.load().role == Role.PRIMARY:
        unsent = exports.keep_unsent_changes(reason)
    generation, seq = _log_position(follow_from) if not unsent else (None, 0)
    with transaction.atomic():
        SyncCursor.objects.update_or_create(pk=1, defaults={"generation": generation, "seq": seq})
        state = FailoverState.load()
        was = state.role
        state.demote(epoch=epoch)
        message = (
            f"{settings.APPLIANCE_NAME} became backup (was {was}, epoch {state.epoch}): {reason}"
        )
        FailoverEvent.record(
            FailoverEvent.Kind.ROLE_CHANGED,
            message,
            severity=FailoverEvent.Severity.WARNING,
            actor=actor,
        )
        AuditEvent.record(actor, "failover.role_changed", message)
        _after_role_change()
    logger.warning("%s", message)


def _log_position(log: dict | None) -> tuple[uuid.UUID | None, int]:
    """A position in a peer's change log, as it sent it; nothing when it is not one."""
    try:
        return uuid.UUID(str(log["generation"])), max(0, int(log["seq"]))
    except (TypeError, KeyError, ValueError):
        return None, 0


def settle_roles(state: FailoverState, hello: dict) -> None:
    """What a site does on learning its peer's role and epoch (split-brain safety).

    A primary that meets a primary with a higher epoch steps down and releases
    the shared IP: the old primary coming back becomes backup, with no
    automatic failback. Equal claims are a conflict for the administrator.
    """
    peer_role, peer_epoch = hello.get("role"), int(hello.get("epoch") or 0)
    if state.role == Role.PRIMARY and peer_role == Role.PRIMARY and peer_epoch > state.epoch:
        demote(
            peer_epoch,
            f"{state.peer_name} is primary with a newer epoch ({peer_epoch} > {state.epoch}).",
            "system",
        )
    elif (
        state.role == peer_role
        and state.role in (Role.PRIMARY, Role.BACKUP)
        and not handing_over(state, peer_role, peer_epoch)
        and not conflict_reported()
    ):
        FailoverEvent.record(
            FailoverEvent.Kind.CONFLICT,
            f"Both sites claim the {state.role} role (epochs {state.epoch} and {peer_epoch}). "
            "Use Fix This Error on the Failover page.",
            severity=FailoverEvent.Severity.DANGER,
        )


def handing_over(state: FailoverState, peer_role: object, peer_epoch: int) -> bool:
    """Whether two backups are a handover under way rather than a conflict.

    Become Primary has the primary step down under the new epoch, and the other site
    takes the role under that epoch a few seconds later: in between, both are backup
    at different epochs. The site that stepped down (the higher epoch) reports it as
    a conflict only once its step-down is HANDOVER_SECONDS old and no one took the
    role; the other site leaves the report to it.
    """
    if state.role != Role.BACKUP or peer_role != Role.BACKUP or peer_epoch == state.epoch:
        return False
    if peer_epoch > state.epoch:
        return True
    stepped_down = FailoverEvent.objects.filter(kind=FailoverEvent.Kind.ROLE_CHANGED).first()
    return (
        stepped_down is not None
        and (timezone.now() - stepped_down.at).total_seconds() < HANDOVER_SECONDS
    )


def conflict_reported() -> bool:
    """Whether a role conflict was recorded and still stands.

    It stands while the last role event is the conflict and the peer, when last
    seen, claimed this site's role. Fix This Error may change only the other
    site's role (this one recording no event): once the peer is seen in the
    other role, the banner goes.
    """
    state = FailoverState.load()
    if state.peer_role != state.role:
        return False
    last = FailoverEvent.objects.filter(
        kind__in=[FailoverEvent.Kind.CONFLICT, FailoverEvent.Kind.ROLE_CHANGED]
    ).first()
    return last is not None and last.kind == FailoverEvent.Kind.CONFLICT


def peer_is_primary(state: FailoverState) -> bool:
    """Before claiming the address (e.g. after a restart), ask the peer who is primary.

    A peer that is primary under an epoch at least ours wins; this site settles
    its role instead of taking the address. An unreachable peer cannot object.
    """
    if not state.is_paired:
        return False
    try:
        # As patient as a poll: a peer that would fail a poll cannot object either.
        with peer.client_for_state(state, timeout=BackupSettings.load().poll_timeout()) as client:
            hello = client.get(HELLO)
    except PeerError:
        return False
    if hello.get("role") == Role.PRIMARY and int(hello.get("epoch") or 0) >= state.epoch:
        settle_roles(state, hello)
        return True
    return False


def check_peer_on_start() -> str:
    """A site that starts as primary asks its peer first (before it serves).

    While it was down its backup may have taken over: a peer that is primary
    under a newer epoch makes this site backup before its web answers anyone.
    An unreachable peer cannot object (the address still waits for the
    follow-up of failover.takeover).
    """
    state = FailoverState.load()
    if state.role != Role.PRIMARY:
        return f"Starting as {state.role} (epoch {state.epoch})."
    if not peer_is_primary(state):
        return f"Starting as primary (epoch {state.epoch}); {state.peer_name} did not object."
    now = FailoverState.load()
    if now.role == Role.BACKUP:
        return f"Starting as backup (epoch {now.epoch}): {state.peer_name} is primary now."
    return (
        f"Starting as primary (epoch {now.epoch}), but {state.peer_name} claims it too: "
        "see the Failover page."
    )
