"""The provider's sign-in page, and the endpoints through which the tests set up its users
and its one client (each needs the launcher's bearer token)."""

from __future__ import annotations

import hmac
import json
from functools import wraps

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from oauth2_provider.models import Application

from .models import Profile


def testing_endpoint(view):
    @csrf_exempt
    @require_POST
    @wraps(view)
    def checked(request: HttpRequest) -> JsonResponse:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(sent.encode(), settings.TESTING_TOKEN.encode()):
            return JsonResponse({"detail": "forbidden"}, status=403)
        return view(request, json.loads(request.body))

    return checked


@testing_endpoint
def user(request: HttpRequest, body: dict) -> JsonResponse:
    """Create or change a user (by ``username``; ``rename_to`` renames), its groups and how it
    signs in. Answers its ``sub``, which never changes."""
    person, _ = User.objects.get_or_create(username=body["username"])
    person.username = body.get("rename_to") or person.username
    for field in ("email", "first_name", "last_name"):
        if field in body:
            setattr(person, field, body[field])
    if "password" in body:
        person.set_password(body["password"])
    person.save()
    if "groups" in body:
        person.groups.set([Group.objects.get_or_create(name=name)[0] for name in body["groups"]])
    profile, _ = Profile.objects.get_or_create(user=person)
    profile.second_factor = body.get("second_factor", profile.second_factor)
    profile.acr = body.get("acr", profile.acr)
    profile.save()
    return JsonResponse({"sub": str(person.pk), "username": person.username})


@testing_endpoint
def client(request: HttpRequest, body: dict) -> JsonResponse:
    """Register (or update) the one confidential client, pre-authorised (no consent page)."""
    application = Application.objects.filter(client_id=body["client_id"]).first() or Application(
        client_id=body["client_id"]
    )
    application.name = "Custos"
    application.client_secret = body["client_secret"]
    application.client_type = Application.CLIENT_CONFIDENTIAL
    application.authorization_grant_type = Application.GRANT_AUTHORIZATION_CODE
    application.redirect_uris = " ".join(body["redirect_uris"])
    application.skip_authorization = True
    application.algorithm = Application.RS256_ALGORITHM
    application.save()
    return JsonResponse({"client_id": application.client_id})
