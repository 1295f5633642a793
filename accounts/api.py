"""API authentication: a token for a username and password, revocation, and who the caller is.

Tokens are django-rest-knox's: only a SHA-512 digest is stored, each expires after
``API_TOKEN_TTL_HOURS``. A token is obtained exactly like a page login: Django's
``authenticate`` (so a failure fires ``user_login_failed`` and lands on the ledger) and a
success fires ``user_logged_in`` (recorded too).
"""

from __future__ import annotations

from django.contrib.auth import authenticate, user_logged_in
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.auth import TokenAuthentication
from knox.models import get_token_model
from knox.settings import knox_settings
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, AuthenticationFailed, PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from audit.context import client_ip

from . import factors
from .lockout import locked_out_message
from .models import User


class ClientAddressThrottle(ScopedRateThrottle):
    """Counts per client address as the ledger and the lockout see it (``CUSTOS_PROXY_COUNT``),
    never per a forwarded header the client wrote itself."""

    def get_ident(self, request: Request) -> str:
        return client_ip(request)


class LockedOut(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.ListField(child=serializers.CharField(), source="roles_sorted", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "display_name", "email", "roles", "is_staff"]
        read_only_fields = fields


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown once; stored hashed.")
    expiry = serializers.DateTimeField()
    user = MeSerializer()


class TokenCreateView(APIView):
    # Only to answer 401 with ``WWW-Authenticate: Token``; the credentials are in the body.
    authentication_classes = [TokenAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "auth_token"

    @extend_schema(request=CredentialsSerializer, responses={201: TokenSerializer}, summary="Get a token", auth=[])
    def post(self, request: Request) -> Response:
        credentials = CredentialsSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request, **credentials.validated_data)  # a failure is audited by the signal
        if getattr(request, "axes_locked_out", False):
            # The same answer for every username, existing or not, right password or wrong.
            raise LockedOut(locked_out_message())
        if user is None:
            raise AuthenticationFailed("Invalid username or password, or the account is inactive.")
        if factors.enrolment_missing(user):
            raise PermissionDenied(factors.ENROLMENT_REQUIRED_MESSAGE, code=factors.ENROLMENT_REQUIRED_CODE)
        if knox_settings.TOKEN_LIMIT_PER_USER is not None:
            live = user.auth_token_set.filter(expiry__gt=timezone.now())
            if live.count() >= knox_settings.TOKEN_LIMIT_PER_USER:
                raise PermissionDenied("Too many live tokens: log out of one first.", code="token_limit")
        instance, token = get_token_model().objects.create(user=user, expiry=knox_settings.TOKEN_TTL)
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        body = {"token": token, "expiry": instance.expiry, "user": user}
        return Response(TokenSerializer(body).data, status=status.HTTP_201_CREATED)


class TokenLogoutView(KnoxLogoutView):
    @extend_schema(request=None, responses={204: OpenApiResponse(description="The token is revoked.")})
    def post(self, request, format=None):
        return super().post(request, format)


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The caller and their roles")
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)
