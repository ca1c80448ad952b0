"""What a site keeps of its peer's `hello` (its name, role, epoch, shared addresses, last
sync) must fit the fields that keep it; otherwise the answer is refused, naming the field."""

from __future__ import annotations

import pytest

from failover import relationship
from failover.peer import PeerError

pytestmark = pytest.mark.django_db


def test_a_sites_own_hello_passes():
    hello = relationship.identity()
    assert relationship.checked_hello(hello, "192.0.2.20:443") is hello


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "n" * 5000}, "name"),
        ({"role": "emperor"}, "role"),
        ({"epoch": -1}, "epoch"),
        ({"epoch": "many"}, "epoch"),
        ({"shared_ip": "not-an-ip; rm -rf /"}, "shared_ip"),
        ({"shared_ip6": "fe80::1/200"}, "shared_ip6"),
        ({"last_sync": {"status": "exploded", "finished_at": None}}, "last_sync"),
        ({"unsent": {"changes": -5}}, "unsent"),
    ],
)
def test_a_hello_with_a_value_this_site_could_not_keep_is_refused_by_field(change, field):
    hello = {**relationship.identity(), **change}
    with pytest.raises(PeerError) as refused:
        relationship.checked_hello(hello, "192.0.2.20:443")
    assert refused.value.message.startswith(
        "The peer at 192.0.2.20:443 answered hello with values this site refuses ("
    )
    assert f"{field}:" in refused.value.message
    assert not refused.value.transient


def test_a_hello_that_is_not_an_object_is_refused():
    with pytest.raises(PeerError, match="hello: not an object"):
        relationship.checked_hello(["primary"], "192.0.2.20:443")
