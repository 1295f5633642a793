from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.urls import allauth_urlpatterns, sso_urlpatterns
from investigations.views.dashboard import dashboard

from .health import health
from .metrics import metrics

handler500 = "config.views.server_error"

# The admin signs in through the one login page (password, then the second factor): its own
# login form would skip the second factor.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    # The start page needs investigations data (cases, grants): it lives there, named "home".
    path("", dashboard, name="home"),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include(allauth_urlpatterns)),
    path("accounts/", include(sso_urlpatterns)),
    path("audit/", include("audit.urls")),
    path("admin/", admin.site.urls),
    path("operations/", include("operations.urls")),
    path("metrics", metrics, name="metrics"),
    path("health", health, name="health"),
    path("api/v1/", include("investigations.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The docs page is for people in a browser: log in first, like every page. The split view
    # serves its start-up script as a file, so the page runs under the CSP without inline code.
    path("api/docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")), name="api-docs"),
    path("", include("investigations.urls")),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """An unknown URL under /api/ answers in the API's error shape, not with an HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)
