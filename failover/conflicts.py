"""When both sites claim the same role: Fix This Error, by stated rules.

Rules, in order: the higher epoch is primary; at equal epochs, the site that
holds the shared IP; otherwise the site where the administrator acts. The
losing side keeps its data in an export before anything can overwrite it.
"""

from __future__ import annotations

from failover import peer, roles, shared_ip
from failover.exports import export_data
from failover.models import FailoverState, Role
from failover.peer import HELLO, ROLE, PeerError
from failover.roles import RoleError


def fix_conflict(actor: object) -> str:
    """Fix This Error: decide who is primary by the stated rules and make it so.

    Rules, in order: the higher epoch is primary; at equal epochs, the site that
    holds the shared IP; otherwise this site (where the administrator acts).
    The losing side exports its data before it becomes backup.
    """
    state = FailoverState.load()
    try:
        with peer.client_for_state(state) as client:
            hello = client.get(HELLO)
            mine = (state.epoch, shared_ip.holds_shared_ip(), 1)
            theirs = (int(hello.get("epoch") or 0), bool(hello.get("holds_shared_ip")), 0)
            if mine > theirs:
                raise_epoch = state.role != Role.PRIMARY or theirs[0] >= state.epoch
                epoch = max(state.epoch, state.peer_epoch or 0, theirs[0]) + 1
                # The other site yields first: it exports its data, then becomes backup
                # under the new epoch. Were this site to take the epoch first, the other
                # one's next peer check could make it backup without the export.
                client.post(
                    ROLE, {"action": "yield", "epoch": epoch if raise_epoch else state.epoch}
                )
                if raise_epoch:
                    roles.promote(
                        "Fix This Error: this site wins by the rules.", actor, agreed=epoch
                    )
                epoch = FailoverState.load().epoch
                return f"This site is primary (epoch {epoch}); {state.peer_name} is backup."
            export_data("Fix This Error")
            if hello.get("role") != Role.PRIMARY:
                client.post(ROLE, {"action": "become_primary"})
            else:
                roles.demote(theirs[0], "Fix This Error: the other site wins by the rules.", actor)
            return f"{state.peer_name} is primary; this site is backup and its data was exported."
    except PeerError as error:
        raise RoleError(
            f"The conflict can only be fixed while {state.peer_name} answers: {error.message}",
            reason=error.reason,
        ) from None
