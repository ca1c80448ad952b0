from django.urls import path

from appliance.api import views

app_name = "api"

urlpatterns = [
    path("reports/", views.ReportListCreate.as_view(), name="report-list"),
    path("reports/<uuid:uuid>/", views.ReportDetail.as_view(), name="report-detail"),
    path("audit/", views.AuditEventList.as_view(), name="audit-list"),
    path(
        "reports/<uuid:uuid>/recording/",
        views.ReportRecording.as_view(),
        name="report-recording",
    ),
]
