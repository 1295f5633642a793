from django.urls import path

from . import views

app_name = "operations"

urlpatterns = [
    path("schedules/", views.schedules, name="schedules"),
]
