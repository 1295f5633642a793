"""The test identity provider itself: a real OpenID Connect provider (discovery, PKCE, signed
ID tokens with the claims Custos reads), so that the sign-on tests exercise the protocol."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests

REDIRECT = "http://testserver/callback/"


def _authorize(identity_provider, *, username: str, password: str, challenge: str | None, scope: str) -> str:
    params = {"client_id": "probe", "response_type": "code", "redirect_uri": REDIRECT, "scope": scope, "state": "s"}
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return identity_provider.sign_in(f"{identity_provider.issuer}/authorize/?{urlencode(params)}", username, password)


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_the_provider_signs_id_tokens_with_groups_and_amr(identity_provider):
    identity_provider.register_client("probe", "probe-secret", [REDIRECT])
    sub = identity_provider.add_user("probe-mfa", "probe-password-1", groups=["g1", "g2"], second_factor=True)
    verifier, challenge = _pkce()
    back = _authorize(
        identity_provider, username="probe-mfa", password="probe-password-1", challenge=challenge, scope="openid groups"
    )
    code = parse_qs(urlsplit(back).query)["code"][0]
    token = requests.post(
        f"{identity_provider.issuer}/token/",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        auth=("probe", "probe-secret"),
        timeout=10,
    ).json()
    keys = jwt.PyJWKClient(f"{identity_provider.issuer}/.well-known/jwks.json")
    claims = jwt.decode(
        token["id_token"],
        keys.get_signing_key_from_jwt(token["id_token"]).key,
        algorithms=["RS256"],
        audience="probe",
        issuer=identity_provider.issuer,
    )
    assert claims["sub"] == sub and claims["groups"] == ["g1", "g2"] and claims["amr"] == ["pwd", "otp"]
    # Without the second factor flag, and without the groups scope: no groups, amr is pwd only.
    identity_provider.add_user("probe-pwd", "probe-password-2")
    verifier, challenge = _pkce()
    back = _authorize(
        identity_provider, username="probe-pwd", password="probe-password-2", challenge=challenge, scope="openid"
    )
    code = parse_qs(urlsplit(back).query)["code"][0]
    token = requests.post(
        f"{identity_provider.issuer}/token/",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        auth=("probe", "probe-secret"),
        timeout=10,
    ).json()
    claims = jwt.decode(token["id_token"], options={"verify_signature": False})
    assert claims["amr"] == ["pwd"] and "groups" not in claims


def test_the_provider_requires_pkce(identity_provider):
    identity_provider.register_client("probe", "probe-secret", [REDIRECT])
    identity_provider.add_user("probe-pkce", "probe-password-3")
    back = _authorize(
        identity_provider, username="probe-pkce", password="probe-password-3", challenge=None, scope="openid"
    )
    assert "error=invalid_request" in back and "code=" not in back
