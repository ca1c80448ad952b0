from django.urls import path

from failover import views

app_name = "failover"

urlpatterns = [
    path("", views.failover, name="failover"),
    path("establish/", views.establish, name="establish"),
    path("break/", views.break_relationship, name="break"),
    path("history/", views.history, name="history"),
    path("sync/", views.sync_now, name="sync_now"),
    path("sync/progress/", views.sync_progress, name="sync_progress"),
    path("syncs/", views.syncs, name="syncs"),
    path("backup-settings/", views.backup_settings, name="backup_settings"),
    path("shared-ip/", views.shared_ip, name="shared_ip"),
    path("dns-swing/", views.dns_settings, name="dns_swing"),
    path("test-connectivity/", views.test_connectivity, name="test_connectivity"),
    path("become-primary/", views.become_primary, name="become_primary"),
    path("become-backup/", views.become_backup, name="become_backup"),
    path("fix-conflict/", views.fix_conflict, name="fix_conflict"),
    path("alerts/", views.alert_settings, name="alerts"),
    path("exports/<str:name>", views.export, name="export"),
    path("backup/", views.backup, name="backup"),
    path("backup/download/", views.download_backup, name="download_backup"),
    path("backup/schedule/", views.backup_schedule, name="backup_schedule"),
]
