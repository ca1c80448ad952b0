from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from appliance.views import configuration, status

site_patterns = [
    path("status/", status.status, name="status"),
    path("configuration/", configuration.configuration, name="configuration"),
    path("users/", include("appliance.views.users_urls")),
    path("reports/", include("appliance.views.reports_urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="appliance:status", permanent=False)),
    path(
        "login",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("", include((site_patterns, "appliance"))),
    path("management/security/", include("security.urls")),
    path("management/failover/", include("failover.urls")),
    path("api/peer/v1/", include("failover.peer_urls")),
    path("api/v1/", include("appliance.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include("failover.api.urls")),
]
