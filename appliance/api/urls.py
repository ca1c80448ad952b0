from django.urls import path

from appliance.api import views
from failover.api import views as failover_views

app_name = "api"

urlpatterns = [
    path("reports/", views.ReportListCreate.as_view(), name="report-list"),
    path("reports/<uuid:uuid>/", views.ReportDetail.as_view(), name="report-detail"),
    path(
        "reports/<uuid:uuid>/recording/",
        views.ReportRecording.as_view(),
        name="report-recording",
    ),
    path("health/", failover_views.HealthView.as_view(), name="health"),
    path("failover/role/", failover_views.FailoverRoleView.as_view(), name="failover-role"),
]
