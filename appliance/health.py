"""Is this site able to work? Liveness of its worker and beat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from appliance.models import Heartbeat


@dataclass(frozen=True)
class ProcessHealth:
    component: str
    alive: bool
    last_seen: datetime | None
    detail: str

    @property
    def badge(self) -> str:
        return "success" if self.alive else "danger"

    def as_dict(self) -> dict[str, object]:
        return {
            "alive": self.alive,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "detail": self.detail,
        }


def processes() -> list[ProcessHealth]:
    """The worker and beat, each alive when its heartbeat is recent."""
    seen = {beat.component: beat for beat in Heartbeat.objects.all()}
    period = settings.HEARTBEAT_SECONDS
    result = []
    for component in Heartbeat.Component:
        beat = seen.get(component.value)
        if beat is None:
            result.append(ProcessHealth(component.value, False, None, "no heartbeat yet"))
            continue
        alive = beat.is_alive()
        seconds = int(beat.age().total_seconds())
        if alive:
            detail = f"heartbeat {seconds} s ago"
        else:
            detail = f"no heartbeat for {seconds} s (expected every {period} s)"
        result.append(ProcessHealth(component.value, alive, beat.last_seen, detail))
    return result
