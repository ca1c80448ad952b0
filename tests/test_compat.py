"""The compatibility contract: what each site announces, and what works across releases."""

from __future__ import annotations

import orjson
import pytest
from django.urls import reverse

from appliance.models import ApiAccount, ApiToken
from appliance.version import SOFTWARE_VERSION
from failover import compat, readiness, relationship
from failover.models import FailoverEvent, FailoverState, Role
from failover.peer import PeerAddress
from failover.sync import codec
from security.models import PreSharedKey
from tests.conftest import make_user, paired_as
from tests.test_peer_authentication import KEY, send, signed

pytestmark = pytest.mark.django_db


def hello(**compat_changes: object) -> dict:
    """A peer's hello as this release answers it, with `compat` changed as given."""
    said = {
        "name": "site-b",
        "version": "9.9.9",
        "role": Role.NONE,
        "epoch": 0,
        "compat": {**compat.announcement(), **compat_changes},
    }
    return said


def first_release_hello() -> dict:
    """What the releases before the announcement answer: no "compat"."""
    said = hello()
    del said["compat"]
    said["version"] = "0.1.0"
    return said


class Peer:
    """A peer client that answers hello with `said` and takes any post."""

    def __init__(self, said: dict) -> None:
        self.said = said
        self.posted: list[tuple[str, dict]] = []

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *_exc: object) -> None:
        pass

    def get(self, _path: str) -> dict:
        return self.said

    def post(self, path: str, payload: dict) -> dict:
        self.posted.append((path, payload))
        return {}


def test_the_hello_announces_what_this_site_speaks_and_reads():
    said = relationship.identity()
    assert said["version"] == SOFTWARE_VERSION
    assert said["compat"] == {
        "protocol": compat.PEER_PROTOCOL,
        "protocol_oldest": compat.PEER_PROTOCOL_OLDEST,
        "sync_format": compat.SYNC_FORMAT,
        "sync_reads": list(compat.SYNC_FORMATS_READ),
        "sync_writes": list(compat.SYNC_FORMATS_WRITTEN),
        "schema": {synced.label: synced.columns for synced in codec.SYNCED},
    }


def test_one_release_apart_is_supported_in_both_directions():
    assert compat.PEER_PROTOCOL_OLDEST >= compat.PEER_PROTOCOL - 1
    assert compat.PEER_PROTOCOL_OLDEST <= compat.PEER_PROTOCOL - 1
    oldest, newest = compat.SYNC_FORMATS_READ
    assert oldest <= compat.SYNC_FORMAT <= newest
    # A new primary still writes what the release before reads, and reads what it writes.
    assert compat.SYNC_FORMATS_WRITTEN[0] <= compat.FIRST_SYNC_FORMAT
    assert compat.SYNC_FORMATS_WRITTEN[1] == compat.SYNC_FORMAT
    assert oldest <= compat.FIRST_SYNC_FORMAT


def test_a_peer_of_another_version_that_speaks_the_same_works_with_this_site():
    verdict = compat.assess(hello(), "site-b")
    assert verdict.ok, verdict.sentence
    assert verdict.theirs.version == "9.9.9"


def test_a_peer_that_announces_nothing_is_the_first_protocol_and_works_with_this_site():
    verdict = compat.assess(first_release_hello(), "site-b")
    assert verdict.ok, verdict.sentence
    assert (verdict.theirs.protocol, verdict.theirs.sync_format) == (1, 2)
    assert verdict.theirs.described == "0.1.0 (peer protocol 1, sync format 2)"


def test_a_newer_peer_that_still_works_with_this_protocol_is_compatible():
    newer = hello(protocol=compat.PEER_PROTOCOL + 1, protocol_oldest=compat.PEER_PROTOCOL)
    assert compat.assess(newer, "site-b").ok


def test_a_peer_two_protocols_ahead_is_refused_naming_both_versions():
    ahead = hello(protocol=compat.PEER_PROTOCOL + 2, protocol_oldest=compat.PEER_PROTOCOL + 1)
    verdict = compat.assess(ahead, "site-b")
    assert not verdict.ok
    assert verdict.sentence.startswith(
        f"site-b runs 9.9.9 (peer protocol {compat.PEER_PROTOCOL + 2}, sync format "
        f"{compat.SYNC_FORMAT})"
    )
    assert f"this site runs {SOFTWARE_VERSION}" in verdict.sentence
    assert "upgrade this site to a release at most one apart from site-b" in verdict.sentence


def test_a_format_the_backup_cannot_read_is_named_with_its_direction():
    verdict = compat.assess(hello(sync_format=9, sync_reads=[9, 9], sync_writes=[9, 9]), "site-b")
    assert verdict.problems == (
        "A sync from site-b to this site would be refused: the primary writes sync formats 9 "
        "to 9, the backup reads formats 2 to 3.",
        "A sync from this site to site-b would be refused: the primary writes sync formats 2 "
        "to 3, the backup reads formats 9 to 9.",
    )


def test_a_primary_writes_the_newest_format_its_backup_reads():
    assert compat.format_to_send(compat.announcement()) == compat.SYNC_FORMAT
    # A backup of the first releases says nothing: it reads format 2 only.
    assert compat.format_to_send(None) == 2
    assert compat.format_to_send({**compat.announcement(), "sync_reads": [2, 2]}) == 2


def test_different_columns_are_named_model_by_model():
    schema = {synced.label: list(synced.columns) for synced in codec.SYNCED}
    schema["appliance.report"] = [*schema["appliance.report"], "rating"]
    verdict = compat.assess(hello(schema=schema), "site-b")
    assert verdict.problems == (
        "A sync from site-b to this site would be refused: for appliance.report the primary "
        "sends rating that the backup lacks.",
        "A sync from this site to site-b would be refused: for appliance.report the primary "
        "lacks rating that the backup has.",
    )


def test_a_malformed_announcement_is_named_not_guessed():
    verdict = compat.assess({"version": "2.0", "compat": {"protocol": "x"}}, "site-b")
    assert not verdict.ok
    assert verdict.sentence.startswith("site-b: The peer's announcement")


def test_establish_accepts_a_backup_of_another_release_within_the_range(monkeypatch):
    PreSharedKey.store(KEY, by="test")
    peer = Peer(first_release_hello())
    monkeypatch.setattr("failover.peer.client_for", lambda *a, **k: peer)
    state = relationship.establish(
        PeerAddress("192.0.2.20", 443), PeerAddress("192.0.2.10", 443), "admin"
    )
    assert state.role == Role.PRIMARY
    ((_path, payload),) = peer.posted
    assert payload["compat"] == compat.announcement()
    assert FailoverState.load().peer_version == "0.1.0"


def test_establish_refuses_a_backup_out_of_range_and_changes_nothing(monkeypatch):
    PreSharedKey.store(KEY, by="test")
    peer = Peer(hello(protocol=compat.PEER_PROTOCOL + 2, protocol_oldest=compat.PEER_PROTOCOL + 2))
    monkeypatch.setattr("failover.peer.client_for", lambda *a, **k: peer)
    with pytest.raises(relationship.RelationshipError) as refused:
        relationship.establish(
            PeerAddress("192.0.2.20", 443), PeerAddress("192.0.2.10", 443), "admin"
        )
    assert refused.value.reason == "incompatible"
    assert "The sites cannot talk" in refused.value.message
    assert peer.posted == []
    assert FailoverState.load().role == Role.NONE


def test_the_peer_check_keeps_the_peers_version_and_says_when_it_cannot_work(monkeypatch):
    paired_as(Role.PRIMARY)
    said = {**hello(sync_reads=[9, 9]), "role": Role.BACKUP, "epoch": 1}
    monkeypatch.setattr("failover.peer.client_for_state", lambda *a, **k: Peer(said))
    relationship.check_peer()
    state = FailoverState.load()
    assert state.peer_version == "9.9.9"
    assert state.peer_incompatible.startswith("A sync from this site to site-b would be refused")
    event = FailoverEvent.objects.get(kind=FailoverEvent.Kind.INCOMPATIBLE)
    assert event.message == state.peer_incompatible

    said["compat"] = compat.announcement()
    relationship.check_peer()
    state = FailoverState.load()
    assert state.peer_incompatible == ""
    assert FailoverEvent.objects.filter(kind=FailoverEvent.Kind.PEER_VERSION).exists()


def test_failover_check_names_mixed_releases_that_work_and_those_that_do_not(monkeypatch):
    state = paired_as(Role.BACKUP)
    check = readiness.compatibility_check(state, first_release_hello())
    assert check.ok
    assert "site-b 0.1.0 (peer protocol 1, sync format 2): they work together" in check.detail
    check = readiness.compatibility_check(
        state, hello(sync_format=9, sync_reads=[9, 9], sync_writes=[9, 9])
    )
    assert not check.ok
    assert "A sync from site-b to this site would be refused" in check.detail


def test_the_failover_page_shows_both_versions_and_what_cannot_work(admin_client):
    state = paired_as(Role.BACKUP)
    state.record_peer_compatibility("9.9.9", "A sync from site-b to this site would be refused.")
    page = admin_client.get(reverse("failover:failover")).content.decode()
    assert f'data-testid="own-version">{SOFTWARE_VERSION}<' in page
    assert 'data-testid="peer-version">9.9.9 <span class="badge text-bg-danger">' in page
    assert "A sync from site-b to this site would be refused. Nothing of a sync" in page


def test_a_final_sync_from_an_incompatible_primary_is_refused_before_anything(monkeypatch):
    from failover import switchover
    from failover.roles import RoleError

    state = paired_as(Role.BACKUP)
    state.record_peer_compatibility("9.9.9", "A sync from site-b to this site would be refused.")
    peer = Peer({})
    monkeypatch.setattr("failover.peer.client_for_state", lambda *a, **k: peer)
    with pytest.raises(RoleError) as refused:
        switchover.become_primary("admin", sync_first=True)
    assert refused.value.reason == "incompatible"
    assert peer.posted == []
    assert FailoverState.load().role == Role.BACKUP


@pytest.mark.usefixtures("peer_redis")
def test_a_primary_refuses_to_stream_to_a_backup_that_cannot_read_it(settings):
    settings.PEER_CLOCK_SKEW_SECONDS = 300
    PreSharedKey.store(KEY, by="test")
    paired_as(Role.PRIMARY)
    body = {"generation": None, "since": None, "full": True}
    cannot = {**compat.announcement(), "sync_reads": [9, 9]}
    refused = send(signed("POST", "/api/peer/v1/sync/changes", {**body, "compat": cannot}))
    assert refused.status_code == 409
    assert refused.json()["reason"] == "incompatible"
    assert "the backup reads formats 9 to 9" in refused.json()["detail"]
    # A backup of the first releases says nothing: it reads format 2, which this site
    # writes for it, API tokens left out (format 2 carried the keys, kept here no more)
    # and API accounts too (that release has no such table).
    ApiToken.issue(make_user("rita"))
    ApiAccount.objects.create(name="monitor", secret_hash="x")
    answered = send(signed("POST", "/api/peer/v1/sync/changes", body))
    assert answered.status_code == 200
    streamed = b"".join(answered.streaming_content)
    assert b'"format":2' in streamed
    users = [orjson.loads(line) for line in streamed.splitlines() if b'"rita"' in line]
    assert len(users) == 1 and users[0][-1] is None
    assert b"appliance.apiaccount" not in streamed and b'"monitor"' not in streamed
    newest = send(
        signed("POST", "/api/peer/v1/sync/changes", {**body, "compat": compat.announcement()})
    )
    streamed = b"".join(newest.streaming_content)
    assert f'"format":{compat.SYNC_FORMAT}'.encode() in streamed
    users = [orjson.loads(line) for line in streamed.splitlines() if b'"rita"' in line]
    assert len(users[0][-1][0]) == 64  # the digest
    assert b'"model":"appliance.apiaccount"' in streamed and b'"monitor"' in streamed


@pytest.mark.usefixtures("peer_redis")
def test_a_backup_holding_an_older_formats_data_gets_everything_once(settings):
    """Format 2 left API tokens out: a backup upgraded past it needs them, and an
    incremental sync would send a user's only when that user changes again."""
    settings.PEER_CLOCK_SKEW_SECONDS = 300
    PreSharedKey.store(KEY, by="test")
    paired_as(Role.PRIMARY)
    ApiToken.issue(make_user("rita"))
    first = send(signed("POST", "/api/peer/v1/sync/changes", {"generation": None, "since": None}))
    header = orjson.loads(b"".join(first.streaming_content).splitlines()[0])
    asked = {
        "generation": header["generation"],
        "since": header["upto"],
        "compat": compat.announcement(),
    }

    def sent(**extra) -> bytes:
        answer = send(signed("POST", "/api/peer/v1/sync/changes", {**asked, **extra}))
        assert answer.status_code == 200, answer.content
        return b"".join(answer.streaming_content)

    # Up to date in this format: nothing to send.
    assert b'"full":false' in sent(applied_format=compat.SYNC_FORMAT)
    assert b'"rita"' not in sent(applied_format=compat.SYNC_FORMAT)
    # Up to date in format 2: everything, once, in this format.
    everything = sent(applied_format=2)
    assert b'"full":true' in everything and b'"rita"' in everything
    # Continuous replication cannot send everything: the backup is told to resync.
    follow = {**asked, "applied_format": 2, "follow": True}
    refused = send(signed("POST", "/api/peer/v1/sync/changes", follow))
    assert refused.status_code == 409
    assert refused.json()["reason"] == "resync_needed"
    assert "holds data in sync format 2" in refused.json()["detail"]


def receive_lines(tmp_path, *lines: dict) -> None:
    """Feed a backup's receiver the start of a change stream, as the download would."""
    import orjson

    from failover.sync import progress, receive

    with receive.Receiver(b"k" * 32, tmp_path, progress.Silent()) as receiver:
        for line in lines:
            receiver.take(orjson.dumps(line))


def test_a_backup_refuses_a_stream_of_a_format_it_does_not_read_before_writing(tmp_path):
    from appliance.models import Report
    from failover.sync import receive

    paired_as(Role.BACKUP)
    header = {"type": "header", "format": 9, "generation": None, "full": True}
    with pytest.raises(receive.SyncFailed) as refused:
        receive_lines(tmp_path, header)
    assert not refused.value.transient
    assert refused.value.message.startswith(
        "The primary sends sync format 9; this site reads formats 2 to 3, so nothing was applied."
    )
    assert not Report.objects.exists()


def test_a_backup_refuses_a_model_with_other_columns_before_writing(tmp_path):
    from failover.sync import receive

    header = {
        "type": "header", "format": compat.SYNC_FORMAT, "generation": None, "full": True,
        "since": None, "upto": 0, "latest": 0, "expected": 0,
    }  # fmt: skip
    report = codec.BY_LABEL["appliance.report"]
    model = {"type": "model", "model": report.label, "columns": [*report.columns, "rating"]}
    with pytest.raises(receive.SyncFailed) as refused:
        receive_lines(tmp_path, header, model)
    assert not refused.value.transient
    assert "so nothing was applied" in refused.value.message
    assert (tmp_path / receive.RECORDS).read_bytes() == b""
