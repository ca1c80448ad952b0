from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView
from oauth2_provider.views import TokenView

from appliance import metrics
from appliance.views import audit, configuration, login, status

site_patterns = [
    path("status/", status.status, name="status"),
    path("configuration/", configuration.configuration, name="configuration"),
    path("users/", include("appliance.views.users_urls")),
    path("reports/", include("appliance.views.reports_urls")),
    path("management/api-accounts/", include("appliance.views.api_accounts_urls")),
    path("management/audit/", audit.audit_list, name="audit"),
    path("management/audit/export/", audit.export, name="audit_export"),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="appliance:status", permanent=False)),
    path("login", login.LoginView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("metrics", metrics.metrics, name="metrics"),
    path("", include((site_patterns, "appliance"))),
    path("management/security/", include("security.urls")),
    path("management/failover/", include("failover.urls")),
    path("api/peer/v1/", include("failover.peer_urls")),
    path("api/v1/", include("appliance.api.urls")),
    path("api/v1/", include("failover.api.v1_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # OAuth 2.0 client credentials of API accounts (appliance.api_accounts).
    path("oauth2/token", login_not_required(TokenView.as_view()), name="oauth2-token"),
    path("", include("failover.api.urls")),
]
