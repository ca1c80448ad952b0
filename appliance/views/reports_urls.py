from django.urls import path

from appliance.views import reports

app_name = "reports"

urlpatterns = [
    path("", reports.report_list, name="list"),
    path("export/", reports.export, name="export"),
    path("<uuid:uuid>/", reports.report_detail, name="detail"),
    path("<uuid:uuid>/recording/", reports.recording, name="recording"),
]
