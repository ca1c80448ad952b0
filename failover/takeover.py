"""What follows a role change: every way the service moves to the primary, in order.

A primary claims the shared addresses (IPv4 with gratuitous ARP, IPv6 with
unsolicited neighbour advertisements), then points the DNS name at itself,
then runs the takeover hooks with the role "primary". A site that becomes
backup (or leaves the pair) runs its hooks first, with its new role, and only
then releases the addresses, so a hook can still act while the address is
here (drain connections, hand a NAT rule over).

`follow` runs in the network worker after each role change and every
peer-check period. The addresses are kept in step every time (drift is
mended); the DNS swing is made once per role change (and settings) and
retried until it works; the hooks run once per role change, claimed by a compare-and-set on
the epoch (FailoverState.claim_follow_up), so a retried task or the periodic
run never repeats them.
"""

from __future__ import annotations

from failover import dns_swing, hooks, shared_ip
from failover.models import FailoverState, Role


def follow(*, peer_checked: bool = False) -> str:
    """Make this site's addresses, DNS name and hooks follow its role. Returns what it did.

    `peer_checked`: the caller has just found the peer unreachable (the
    monitor's takeover), so claiming the addresses does not ask it again.
    """
    state = FailoverState.load()
    due = state.follow_up_due
    if state.role != Role.PRIMARY:
        ran = hooks.run_for_role(state) if due and state.claim_follow_up() else []
        addresses = shared_ip.reconcile(peer_checked=peer_checked)
        return f"{state.role}: hooks {len(ran)}, shared IP {addresses}"
    addresses = shared_ip.reconcile(peer_checked=peer_checked)
    now = FailoverState.load()
    if now.role != Role.PRIMARY or now.epoch != state.epoch:
        # The claim found another primary and this site stepped down: that change
        # has its own follow-up.
        return f"stepped down: shared IP {addresses}"
    name = dns_swing.follow(now.epoch)
    ran = hooks.run_for_role(now) if due and now.claim_follow_up() else []
    return f"primary: shared IP {addresses}, DNS {name}, hooks {len(ran)}"
