from django.urls import path

from appliance.views import users

app_name = "users"

urlpatterns = [
    path("", users.user_list, name="list"),
    path("new/", users.user_create, name="create"),
    path("<int:pk>/", users.user_edit, name="edit"),
    path("<int:pk>/password/", users.user_set_password, name="set_password"),
    path("<int:pk>/deactivate/", users.user_deactivate, name="deactivate"),
    path("<int:pk>/reactivate/", users.user_reactivate, name="reactivate"),
    path("groups/", users.group_list, name="groups"),
    path("groups/new/", users.group_create, name="group_create"),
    path("groups/<int:pk>/", users.group_edit, name="group_edit"),
]
