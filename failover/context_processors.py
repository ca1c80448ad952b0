from django.http import HttpRequest

from failover.models import FailoverState


def failover(request: HttpRequest) -> dict[str, object]:
    """The role badge in every page's header, and the tabs a backup does not show."""
    return {"failover_state": FailoverState.load()}
