from django.urls import path

from .views import grant as grant_views
from .views import request as request_views

app_name = "investigations"

urlpatterns = [
    path("cases/<int:case_pk>/requests/new/", request_views.request_create, name="request_create"),
    path("requests/<int:pk>/", request_views.request_detail, name="request_detail"),
    path("requests/<int:pk>/edit/", request_views.request_edit, name="request_edit"),
    path("requests/<int:pk>/submit/", request_views.request_submit, name="request_submit"),
    path("requests/<int:pk>/withdraw/", request_views.request_withdraw, name="request_withdraw"),
    path("requests/<int:pk>/decide/", request_views.request_decide, name="request_decide"),
    path("review/", request_views.review_queue, name="review_queue"),
    path("grants/", grant_views.grant_list, name="grant_list"),
    path("grants/<int:pk>/", grant_views.grant_detail, name="grant_detail"),
    path("grants/<int:pk>/revoke/", grant_views.grant_revoke, name="grant_revoke"),
]
