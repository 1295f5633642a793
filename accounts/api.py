"""API authentication: a token for a username and password, revocation, and who the caller is.

Tokens are django-rest-knox's: only a SHA-512 digest is stored, each expires after
``API_TOKEN_TTL_HOURS``. A token is obtained exactly like a page login: Django's
``authenticate`` (so a failure fires ``user_login_failed`` and lands on the ledger) and a
success fires ``user_logged_in`` (recorded too).

A token obtained with a code from the user's second factor (``otp``), or stepped up later at
``POST /api/v1/auth/step-up/``, may act on the endpoints that need a recent second-factor check
for ``CUSTOS_STEP_UP_MINUTES`` (``accounts.stepup``); any other token gets 403
``step_up_required`` there.
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.auth import TokenAuthentication
from knox.views import LoginView as KnoxLoginView
from knox.views import LogoutView as KnoxLogoutView
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, AuthenticationFailed, PermissionDenied, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from audit.context import client_ip

from . import factors, stepup
from .actions import api_token_second_factor, token_limit_reached
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


class InvalidCode(AuthenticationFailed):
    default_code = "otp_invalid"


OTP_HELP = (
    "A code from the user's authenticator app (or an unused recovery code). With it, the token may act on "
    "the endpoints that need a recent second-factor check for CUSTOS_STEP_UP_MINUTES."
)


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    otp = serializers.CharField(max_length=64, required=False, allow_blank=True, help_text=OTP_HELP)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`. Shown once; stored hashed.")
    expiry = serializers.DateTimeField()
    second_factor_at = serializers.DateTimeField(
        allow_null=True, help_text="When the token last passed a second factor (null: never; see step-up)."
    )
    user = MeSerializer()


class StepUpSerializer(serializers.Serializer):
    otp = serializers.CharField(max_length=64, help_text=OTP_HELP)


class StepUpResultSerializer(serializers.Serializer):
    second_factor_at = serializers.DateTimeField()
    step_up_until = serializers.DateTimeField(help_text="The step-up endpoints accept the caller until then.")


def _check_code(request: Request, user: User, code: str) -> None:
    """Refuse unless ``code`` is a current code of ``user``'s own second factor (counted when wrong)."""
    if not factors.has_second_factor(user):
        raise ValidationError({"otp": ["You have no second factor: enrol an authenticator app first."]})
    if not factors.check_second_factor(user, code.strip(), request=request._request):
        raise InvalidCode(stepup.WRONG_CODE)


def _signed_in(request: Request) -> tuple[User, str]:
    """The user whose credentials (and, with a second factor, whose code) are in the body, and
    the code given; or the API's refusal: locked out, wrong credentials, enrolment missing, too
    many live tokens, a wrong or missing code."""
    credentials = CredentialsSerializer(data=request.data)
    credentials.is_valid(raise_exception=True)
    code = credentials.validated_data.pop("otp", "")
    user = authenticate(request, **credentials.validated_data)  # a failure is audited by the signal
    if getattr(request, "axes_locked_out", False):
        # The same answer for every username, existing or not, right password or wrong.
        raise LockedOut(locked_out_message())
    if user is None:
        raise AuthenticationFailed("Invalid username or password, or the account is inactive.")
    if factors.enrolment_missing(user):
        raise PermissionDenied(factors.ENROLMENT_REQUIRED_MESSAGE, code=factors.ENROLMENT_REQUIRED_CODE)
    if token_limit_reached(user):
        raise PermissionDenied("Too many live tokens: log out of one first.", code="token_limit")
    if code:
        _check_code(request, user, code)
    elif factors.has_second_factor(user):
        # Signing in here is signing in: a user with a second factor gives its code, as on the
        # login page; a password alone gets no token.
        raise AuthenticationFailed("Give the code of your second factor (otp) with your password.", code="otp_required")
    return user, code


# knox's login (the token, then ``user_logged_in``) for credentials sent in the body: the checks
# of ``_signed_in`` come first, and the answer is ours (201, ``TokenSerializer``, with when the
# token passed a second factor). A comment, not a docstring: the API schema would show it.
class TokenCreateView(KnoxLoginView):
    # Only to answer 401 with ``WWW-Authenticate: Token``; the credentials are in the body.
    authentication_classes = [TokenAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "auth_token"

    @extend_schema(request=CredentialsSerializer, responses={201: TokenSerializer}, summary="Get a token", auth=[])
    def post(self, request: Request, format=None) -> Response:
        request.user, self.code = _signed_in(request)
        return super().post(request, format)

    def get_token_limit_per_user(self) -> None:
        return None  # checked by ``_signed_in``, before the code is spent, with the API's error shape

    def get_post_response(self, request: Request, token: str, instance) -> Response:
        checked_at = None
        if self.code:
            factor = api_token_second_factor(actor=request.user, token=instance, method="token", request=request)
            checked_at = factor.checked_at
        body = {"token": token, "expiry": instance.expiry, "second_factor_at": checked_at, "user": request.user}
        return Response(TokenSerializer(body).data, status=status.HTTP_201_CREATED)


class StepUpView(APIView):
    """Step up the caller's token (or, used with a browser session, the session) with a code."""

    throttle_classes = [ClientAddressThrottle]
    throttle_scope = "auth_token"

    @extend_schema(
        request=StepUpSerializer,
        responses={200: StepUpResultSerializer},
        summary="Step up: a code from your second factor lets this token decide for a few minutes",
    )
    def post(self, request: Request) -> Response:
        body = StepUpSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        _check_code(request, request.user, body.validated_data["otp"])
        if request.auth is None:  # a browser session
            factors.record_second_factor(request._request, method=stepup.METHOD)
            checked_at = factors.second_factor_at(request._request)
        else:
            checked_at = api_token_second_factor(
                actor=request.user, token=request.auth, method=stepup.METHOD, request=request
            ).checked_at
        return Response({"second_factor_at": checked_at, "step_up_until": checked_at + stepup.window()})


class TokenLogoutView(KnoxLogoutView):
    @extend_schema(request=None, responses={204: OpenApiResponse(description="The token is revoked.")})
    def post(self, request, format=None):
        return super().post(request, format)


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The caller and their roles")
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)
