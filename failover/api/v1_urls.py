"""Failover's part of the JSON API, version 1 (included under /api/v1/ by the site)."""

from django.urls import path

from failover.api import views

app_name = "failover_v1"

urlpatterns = [
    path("health/", views.HealthView.as_view(), name="health"),
    path("failover/role/", views.FailoverRoleView.as_view(), name="failover-role"),
]
