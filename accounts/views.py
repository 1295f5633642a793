from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what this user's roles let them do."""
    return render(request, "accounts/home.html", {"roles": sorted(request.user.role_names)})
