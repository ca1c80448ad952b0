"""Routes at the site's root: the Command API and the load balancers' health check.

appliance/urls.py includes them with `path("", include("failover.api.urls"))`; the JSON
report and the role change live under /api/v1/ (failover/api/v1_urls.py).
"""

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from failover.api import views

app_name = "failover_api"

urlpatterns = [
    path("api/command", login_not_required(views.CommandView.as_view()), name="command"),
    path(
        "api/command.xsd",
        login_not_required(views.command_schema_document),
        name="command-schema",
    ),
    path("check_health", login_not_required(views.load_balancer_check), name="check-health"),
]
