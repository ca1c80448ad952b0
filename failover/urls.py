from django.urls import path

from failover import views

app_name = "failover"

urlpatterns = [
    path("", views.failover, name="failover"),
    path("establish/", views.establish, name="establish"),
    path("break/", views.break_relationship, name="break"),
    path("history/", views.history, name="history"),
]
