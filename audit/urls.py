from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="event_list"),
    path("events/<int:seq>/", views.event_detail, name="event_detail"),
    path("cases/<str:reference>/", views.case_timeline, name="case_timeline"),
    path("verification/", views.verification, name="verification"),
    path("verification/run/", views.verification_start, name="verification_start"),
    path("verification/runs/<int:pk>.json", views.verification_status, name="verification_status"),
    path("export/", views.export, name="export"),
]
