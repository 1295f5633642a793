from django.urls import path

from .views import query

app_name = "investigations"

urlpatterns = [
    path("grants/<int:grant_pk>/queries/new/", query.query_create, name="query_create"),
    path("queries/<int:pk>/", query.query_detail, name="query_detail"),
    path("queries/<int:pk>/status.json", query.query_status, name="query_status"),
    path("queries/<int:pk>/results/", query.query_results, name="query_results"),
    path("queries/<int:pk>/results.csv", query.query_download, name="query_download"),
]
