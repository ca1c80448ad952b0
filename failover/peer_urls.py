from django.urls import path

from failover import peer_api

app_name = "peer"

urlpatterns = [
    path("hello", peer_api.HelloView.as_view(), name="hello"),
    path("establish", peer_api.EstablishView.as_view(), name="establish"),
    path("break", peer_api.BreakView.as_view(), name="break"),
    path("rekey", peer_api.RekeyView.as_view(), name="rekey"),
    path("sync/changes", peer_api.SyncChangesView.as_view(), name="sync-changes"),
    path("sync/file", peer_api.SyncFileView.as_view(), name="sync-file"),
    path("sync/request", peer_api.SyncRequestView.as_view(), name="sync-request"),
    path("role", peer_api.RoleView.as_view(), name="role"),
    path("backup-settings", peer_api.BackupSettingsView.as_view(), name="backup-settings"),
]
