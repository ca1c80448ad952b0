"""The relationship between two sites: establish, break, and check the peer.

Each function is one named operation. This site talks to the peer only through
failover.peer; the other site's handlers (accept_*) are called by the peer API
views with already-authenticated payloads. `identity` is what a site says
about itself in answer to `hello`.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.db import transaction
from rest_framework import serializers

from appliance.models import AuditEvent
from appliance.version import SOFTWARE_VERSION
from failover import compat, jobs, peer, replication, roles, shared_ip
from failover.models import FailoverEvent, FailoverState, Role, SharedIP, SyncRun
from failover.peer import (
    BREAK,
    ESTABLISH,
    HELLO,
    REKEY,
    PeerAddress,
    PeerError,
    fetch_certificate_fingerprint,
    peer_scheme,
)
from failover.sync import runs
from security import keys, tls
from security.models import PreSharedKey

logger = logging.getLogger(__name__)


class RelationshipError(Exception):
    """An operation on the relationship was refused. `reason` is machine-readable."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def identity() -> dict[str, object]:
    """What this site says about itself in answer to `hello` (nothing secret)."""
    state = FailoverState.load()
    shared = SharedIP.load()
    return {
        "name": settings.APPLIANCE_NAME,
        "version": SOFTWARE_VERSION,
        # What this site speaks and reads, so that sites one release apart work together.
        "compat": compat.announcement(),
        "role": state.role,
        "epoch": state.epoch,
        "peer_name": state.peer_name,
        "peer_address": state.peer_address,
        "last_sync": last.as_dict() if (last := SyncRun.latest()) else None,
        "holds_shared_ip": shared_ip.holds_shared_ip(),
        "shared_ip": shared.address,
        "shared_ip6": shared.address6,
        # How far this site has applied its primary's log (a backup's acknowledgement).
        "cursor": replication.applied_cursor(),
        # Changes this site kept in an export when it stopped being primary.
        "unsent": {
            "changes": state.unsent_changes,
            "export": state.unsent_export,
            "at": state.unsent_at.isoformat() if state.unsent_at else None,
        }
        if state.unsent_changes
        else None,
    }


class _LastSync(serializers.Serializer):
    status = serializers.ChoiceField(choices=SyncRun.Status.choices)
    finished_at = serializers.DateTimeField(allow_null=True, required=False)


class _Unsent(serializers.Serializer):
    changes = serializers.IntegerField(min_value=0)
    export = serializers.CharField(max_length=200, allow_blank=True, required=False)
    at = serializers.DateTimeField(allow_null=True, required=False)


class _SharedAddress(serializers.CharField):
    def to_internal_value(self, data: object) -> str:
        value = super().to_internal_value(data)
        if value:
            try:
                ipaddress.ip_interface(value)
            except ValueError:
                raise serializers.ValidationError("Not an address with its prefix.") from None
        return value


class _Hello(serializers.Serializer):
    """What this site keeps or shows of the peer's `hello`: as its own fields allow."""

    name = serializers.CharField(max_length=100)
    version = serializers.CharField(max_length=50)
    role = serializers.ChoiceField(choices=Role.choices)
    epoch = serializers.IntegerField(min_value=0)
    peer_name = serializers.CharField(max_length=100, allow_blank=True, required=False)
    peer_address = serializers.CharField(max_length=300, allow_blank=True, required=False)
    shared_ip = _SharedAddress(max_length=50, allow_blank=True, required=False)
    shared_ip6 = _SharedAddress(max_length=50, allow_blank=True, required=False)
    last_sync = _LastSync(allow_null=True, required=False)
    unsent = _Unsent(allow_null=True, required=False)


def checked_hello(hello: object, where: str) -> dict:
    """The peer's answer to `hello`, if every value this site keeps from it fits the field
    that keeps it (as received: extra keys pass through). Raises PeerError naming the field."""
    checked = _Hello(data=hello)
    if not isinstance(hello, dict) or not checked.is_valid():
        errors = checked.errors if isinstance(hello, dict) else {"hello": ["not an object"]}
        named = "; ".join(
            f"{field}: {' '.join(map(str, problems))}" for field, problems in errors.items()
        )
        raise PeerError(
            f"The peer at {where} answered hello with values this site refuses ({named[:300]}).",
            transient=False,
            reason="bad_response",
        )
    return hello


def probe_certificate(address: PeerAddress) -> str:
    """The fingerprint the peer presents now, to show before pinning it. Raises PeerError."""
    return fetch_certificate_fingerprint(
        address.host, address.port, timeout=settings.PEER_TIMEOUT_SECONDS
    )


def establish(backup: PeerAddress, reverse: PeerAddress, actor: object) -> FailoverState:
    """Make this site the primary and `backup` its backup.

    The site that holds the data establishes the relationship (the seed), so it
    becomes the primary. The backup calls back over `reverse` before it
    accepts, which proves that both directions work with the same key.
    """
    state = FailoverState.load()
    if state.is_paired:
        raise RelationshipError(
            f"This site is already {state.role} with {state.peer_name} at "
            f"{state.peer_address}. Break that relationship first.",
            reason="already_paired",
        )
    if PreSharedKey.current() is None:
        raise RelationshipError(
            "This site has no pre-shared key. Save one under Management > Security, and the "
            "same one on the backup.",
            reason="no_key",
        )
    # The pair's own signing key: a random salt and key id, kept here first so that
    # the backup's first calls, signed with it, are accepted the moment it has them.
    salt, key_id = keys.new_salt(), keys.new_key_id()
    PreSharedKey.set_pair(salt, key_id)
    try:
        with peer.client_for(backup, bootstrap=True) as client:
            hello = checked_hello(client.get(HELLO), backup.display)
            _check_hello(hello, backup)
            epoch = max(state.epoch, int(hello["epoch"])) + 1
            client.post(
                ESTABLISH,
                {
                    "pair_salt": salt,
                    "pair_key_id": key_id,
                    "primary_name": settings.APPLIANCE_NAME,
                    "primary_host": reverse.host,
                    "primary_port": reverse.port,
                    "primary_scheme": peer_scheme(),
                    "primary_fingerprint": tls.own_fingerprint(),
                    "backup_host": backup.host,
                    "backup_port": backup.port,
                    "epoch": epoch,
                    "version": SOFTWARE_VERSION,
                    "compat": compat.announcement(),
                },
            )
    except PeerError as error:
        refusal = _as_relationship_error(error)
        if error.reason == "key_mismatch":
            refusal = _earlier_release(backup) or refusal
        FailoverEvent.record(
            FailoverEvent.Kind.KEY_MISMATCH
            if refusal.reason == "key_mismatch"
            else FailoverEvent.Kind.ERROR,
            f"Establish Relationship with {backup.display} failed: {refusal}",
            severity=FailoverEvent.Severity.DANGER,
            actor=actor,
        )
        raise refusal from None
    with transaction.atomic():
        state.establish(
            Role.PRIMARY,
            epoch=epoch,
            peer_name=str(hello["name"]),
            peer_host=backup.host,
            peer_port=backup.port,
            peer_scheme=peer_scheme(),
            peer_fingerprint=backup.fingerprint,
            local_host=reverse.host,
            local_port=reverse.port,
        )
        state.record_peer_compatibility(str(hello.get("version") or ""), "")
        _record_established(state, actor)
    return state


def _earlier_release(backup: PeerAddress) -> RelationshipError | None:
    """Why a backup that refused the bootstrap key cannot pair, when it runs a release from
    before per-pair keys: such a site accepts the key its releases derive, and says its
    version. None when it does not answer to that key either (the keys differ)."""
    try:
        with peer.client_for(backup, legacy=True) as client:
            hello = client.get(HELLO)
    except PeerError:
        return None
    version = str(hello.get("version") if isinstance(hello, dict) else None)[:80]
    return RelationshipError(
        f"The site at {backup.display} runs {version}, a release from before this one that "
        f"pairs only with its own version. Upgrade it to this site's version "
        f"({SOFTWARE_VERSION}) first, then establish the relationship again.",
        reason="incompatible",
    )


def _as_relationship_error(error: PeerError) -> RelationshipError:
    """A refusal the peer explained (409 with a reason) keeps the peer's reason and words."""
    payload = error.payload if isinstance(error.payload, dict) else {}
    if error.status == 409 and payload.get("reason") and payload.get("detail"):
        return RelationshipError(
            f"The backup refused: {payload['detail']}", reason=str(payload["reason"])
        )
    return RelationshipError(error.message, reason=error.reason)


def _check_hello(hello: dict, backup: PeerAddress) -> None:
    if hello.get("name") == settings.APPLIANCE_NAME:
        raise RelationshipError(
            f"The site at {backup.display} is named {hello.get('name')}, like this one. Give "
            "each site its own APPLIANCE_NAME (or it is this very site).",
            reason="same_name",
        )
    verdict = compat.assess(hello, f"The site at {backup.display}")
    if not verdict.ok:
        raise RelationshipError(verdict.sentence, reason="incompatible")
    if hello.get("role") != Role.NONE:
        raise RelationshipError(
            f"The site at {backup.display} ({hello.get('name')}) is already "
            f"{hello.get('role')} with {hello.get('peer_name') or 'another site'}"
            f"{' at ' + hello['peer_address'] if hello.get('peer_address') else ''}. "
            "Break that relationship on it first.",
            reason="already_paired",
        )


def _record_established(state: FailoverState, actor: object) -> None:
    message = (
        f"Relationship established: {settings.APPLIANCE_NAME} is {state.role}, "
        f"{state.peer_name} at {state.peer_address} is {state.peer_role} (epoch {state.epoch})."
    )
    FailoverEvent.record(FailoverEvent.Kind.ESTABLISHED, message, actor=actor)
    AuditEvent.record(actor, "failover.established", message)
    # A role change like any other: the addresses, the DNS name and the hooks follow.
    transaction.on_commit(jobs.follow_role)


def accept_establish(payload: dict) -> FailoverState:
    """On the backup: accept the primary's request, after calling it back."""
    state = FailoverState.load()
    primary = PeerAddress(
        str(payload["primary_host"]),
        int(payload["primary_port"]),
        str(payload.get("primary_fingerprint") or ""),
    )
    if state.is_paired:
        raise RelationshipError(
            f"This site is already {state.role} with {state.peer_name} at {state.peer_address}.",
            reason="already_paired",
        )
    verdict = compat.assess(payload, f"The primary {payload['primary_name']}")
    if not verdict.ok:
        raise RelationshipError(verdict.sentence, reason="incompatible")
    epoch = int(payload["epoch"])
    if epoch <= state.epoch:
        raise RelationshipError(
            f"Epoch {epoch} is not newer than this site's epoch {state.epoch}.",
            reason="stale_epoch",
        )
    scheme = str(payload.get("primary_scheme") or "https")
    try:
        with peer.client_for(primary, scheme, bootstrap=True) as client:
            client.get(HELLO)
    except PeerError as error:
        raise RelationshipError(
            f"The backup could not reach the primary back at {primary.display} (the reverse "
            f"connection details): {error.message}",
            reason="reverse_unreachable",
        ) from None
    with transaction.atomic():
        state.establish(
            Role.BACKUP,
            epoch=epoch,
            peer_name=str(payload["primary_name"]),
            peer_host=primary.host,
            peer_port=primary.port,
            peer_scheme=scheme,
            peer_fingerprint=primary.fingerprint,
            local_host=str(payload.get("backup_host") or ""),
            local_port=payload.get("backup_port"),
        )
        state.record_peer_compatibility(str(payload.get("version") or ""), "")
        # A primary of a release before salts sends none: the pair keeps its key.
        PreSharedKey.set_pair(
            str(payload.get("pair_salt", "")), str(payload.get("pair_key_id", ""))
        )
        _record_established(state, f"peer {state.peer_name}")
        # The seed: the backup pulls the primary's data right away.
        runs.request_sync(SyncRun.Trigger.ESTABLISHED, full=True, by=f"peer {state.peer_name}")
    return state


def rekey(actor: object) -> str:
    """Give the pair a new random salt and key id for its signing key (an upgrade for a
    pair established before per-pair salts, or a fresh key id). Returns a sentence.

    The new values are kept here first and handed over signed with the bootstrap key,
    which both sites accept whatever their pair key; if the peer does not take them,
    this site goes back to its previous ones, so the two never disagree for long.
    """
    state = FailoverState.load()
    stored = PreSharedKey.current()
    if not state.is_paired or stored is None:
        raise RelationshipError(
            "This site is not paired: a new pair key is agreed at Establish Relationship.",
            reason="not_paired",
        )
    previous = (stored.pair_salt, stored.pair_key_id)
    salt, key_id = keys.new_salt(), keys.new_key_id()
    PreSharedKey.set_pair(salt, key_id)
    try:
        with peer.client_for_state(state, bootstrap=True) as client:
            client.post(REKEY, {"pair_salt": salt, "pair_key_id": key_id})
    except PeerError as error:
        PreSharedKey.set_pair(*previous)
        raise RelationshipError(
            f"{state.peer_name} did not take the new pair key: {error.message} Nothing was "
            "changed.",
            reason=error.reason,
        ) from None
    message = f"New pair signing key agreed with {state.peer_name} (key id {key_id})."
    AuditEvent.record(actor, "security.pair_rekeyed", message)
    return message


def accept_rekey(payload: dict) -> None:
    """On the peer's request (signed with the bootstrap key): sign with the new pair key."""
    PreSharedKey.set_pair(str(payload["pair_salt"]), str(payload["pair_key_id"]))
    state = FailoverState.load()
    AuditEvent.record(
        f"peer {state.peer_name}",
        "security.pair_rekeyed",
        f"New pair signing key from {state.peer_name} (key id {payload['pair_key_id']}).",
    )


def break_relationship(actor: object, *, force: bool = False) -> str:
    """Return both sites to role none. With `force`, this site leaves even if the peer is gone.

    Returns a sentence for the administrator saying what happened on each side.
    """
    state = FailoverState.load()
    if not state.is_paired:
        raise RelationshipError("This site is not paired.", reason="not_paired")
    other = f"{state.peer_name} at {state.peer_address}"
    try:
        with peer.client_for_state(state) as client:
            client.post(BREAK, {"epoch": state.epoch, "from": settings.APPLIANCE_NAME})
        peer_outcome = f"{other} has left the relationship too."
    except PeerError as error:
        if not force:
            raise RelationshipError(
                f"Could not tell {other} to break the relationship: {error.message} "
                "Nothing was changed. Use Force to break it on this site alone.",
                reason=error.reason,
            ) from None
        peer_outcome = (
            f"{other} could not be told ({error.message}); break the relationship there too "
            "when it is back."
        )
    _leave(state, actor, f"Relationship broken on {settings.APPLIANCE_NAME}. {peer_outcome}")
    return peer_outcome


def accept_break(payload: dict) -> None:
    """On the peer's request: leave the relationship."""
    state = FailoverState.load()
    if not state.is_paired:
        return
    _leave(state, f"peer {state.peer_name}", f"Relationship broken by {state.peer_name}.")


def _leave(state: FailoverState, actor: object, message: str) -> None:
    with transaction.atomic():
        state.leave()
        FailoverEvent.record(FailoverEvent.Kind.BROKEN, message, actor=actor)
        AuditEvent.record(actor, "failover.broken", message)
        transaction.on_commit(jobs.follow_role)


def check_peer() -> None:
    """Ask the peer how it is and record the answer; record transitions as events."""
    state = FailoverState.load()
    if not state.is_paired:
        return
    try:
        with peer.client_for_state(state) as client:
            hello = checked_hello(client.get(HELLO), state.peer_address)
    except PeerError as error:
        if state.record_peer_check(reachable=False, error=error.message):
            kind, severity = FailoverEvent.Kind.PEER_UNREACHABLE, FailoverEvent.Severity.WARNING
            if error.reason == "key_mismatch":
                kind, severity = FailoverEvent.Kind.KEY_MISMATCH, FailoverEvent.Severity.DANGER
            FailoverEvent.record(
                kind,
                f"{state.peer_name} at {state.peer_address} cannot be checked: {error.message}",
                severity=severity,
            )
        return
    _record_compatibility(state, hello)
    if state.role == Role.PRIMARY and isinstance(applied := hello.get("cursor"), dict):
        replication.note_ack(applied.get("generation"), applied.get("seq"))
    if state.record_peer_check(
        reachable=True,
        role=hello["role"],
        epoch=hello["epoch"],
        last_sync=hello.get("last_sync"),
        unsent=hello.get("unsent"),
    ):
        FailoverEvent.record(
            FailoverEvent.Kind.PEER_REACHABLE,
            f"{state.peer_name} at {state.peer_address} is reachable again.",
        )
    roles.settle_roles(state, hello)


def _record_compatibility(state: FailoverState, hello: dict) -> None:
    """Keep the peer's version and whether the two sites work together; say when that changes."""
    verdict = compat.assess(hello, state.peer_name)
    if not state.record_peer_compatibility(verdict.theirs.version, verdict.sentence):
        return
    if verdict.ok:
        FailoverEvent.record(
            FailoverEvent.Kind.PEER_VERSION,
            f"{state.peer_name} runs {verdict.theirs.described}; this site runs "
            f"{verdict.ours.described}. The two work together.",
        )
    else:
        FailoverEvent.record(
            FailoverEvent.Kind.INCOMPATIBLE,
            verdict.sentence,
            severity=FailoverEvent.Severity.DANGER,
        )
