"""What the security app tells the rest of the site, so that it imports none of it.

- `peer_request_refused`: a peer request was refused (a bad, stale or replayed
  signature). Sent at most once a minute per source and reason; the audit trail
  has it already. Arguments: `message`, `reason`, `source`.
- `key_notes`: the Security page asks what an administrator should know before
  (`saved=False`) or after (`saved=True`) changing the pre-shared key. Receivers
  return a sentence, or None.
"""

from django.dispatch import Signal

peer_request_refused = Signal()
key_notes = Signal()


def notes(*, saved: bool) -> list[str]:
    """Every sentence the receivers of `key_notes` return."""
    return [note for _, note in key_notes.send(sender=None, saved=saved) if note]
