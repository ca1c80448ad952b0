from django.urls import path

from appliance.views import api_accounts

app_name = "api_accounts"

urlpatterns = [
    path("", api_accounts.account_list, name="list"),
    path("new/", api_accounts.account_create, name="create"),
    path("<int:pk>/", api_accounts.account_edit, name="edit"),
    path("<int:pk>/regenerate/", api_accounts.account_regenerate, name="regenerate"),
    path("<int:pk>/delete/", api_accounts.account_delete, name="delete"),
]
