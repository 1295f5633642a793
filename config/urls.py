from django.contrib import admin
from django.urls import include, path

from investigations.views.dashboard import dashboard

handler500 = "config.views.server_error"

urlpatterns = [
    # The start page needs investigations data (cases, grants): it lives there, named "home".
    path("", dashboard, name="home"),
    path("accounts/", include("accounts.urls")),
    path("audit/", include("audit.urls")),
    path("admin/", admin.site.urls),
    path("operations/", include("operations.urls")),
    path("", include("investigations.urls")),
]
