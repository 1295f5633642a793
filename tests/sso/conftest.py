"""Single sign-on against the test identity provider (``tests/oidc_provider``), over real HTTP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

CLIENT_ID, CLIENT_SECRET = "custos", "custos-client-secret-for-the-tests"
CALLBACK = "/accounts/oidc/sso/login/callback/"
IDP_PASSWORD = "a-password-at-the-identity-provider"
ROLE_MAP = {
    "idp-investigators": ["investigator"],
    "idp-legal": ["legal_reviewer"],
    "idp-senior-legal": ["legal_reviewer", "senior_legal_reviewer"],
    "idp-auditors": ["auditor"],
}


def configure(settings, provider, base_url: str = "http://testserver", **overrides) -> None:
    """Point Custos at the test provider, as the CUSTOS_OIDC_* variables would."""
    provider.register_client(CLIENT_ID, CLIENT_SECRET, [f"{base_url}{CALLBACK}"])
    settings.CUSTOS_SSO = {
        **settings.CUSTOS_SSO,
        "ISSUER": provider.issuer,
        "PROVIDER_NAME": "Test IdP",
        "ROLES_CLAIM": "groups",
        "ROLE_MAP": ROLE_MAP,
        "CREATE_USERS": True,
        **overrides,
    }
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        **settings.CONTENT_SECURITY_POLICY,
        "DIRECTIVES": {**directives, "form-action": [*directives["form-action"], provider.url]},
    }
    settings.SOCIALACCOUNT_PROVIDERS = {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [
                {
                    "provider_id": "sso",
                    "name": "Test IdP",
                    "client_id": CLIENT_ID,
                    "secret": CLIENT_SECRET,
                    "settings": {"server_url": provider.issuer, "scope": ["openid", "profile", "email", "groups"]},
                }
            ],
        }
    }


class SignOn:
    def __init__(self, provider, settings):
        self.provider, self.settings = provider, settings

    def person(self, username: str, **fields) -> str:
        """A person at the provider (created or changed); returns their ``sub``."""
        fields.setdefault("email", f"{username}@idp.example.org")
        return self.provider.add_user(username, IDP_PASSWORD, **fields)

    def start(self, client, next_url: str | None = None):
        """Press the sign-in button: Custos answers with a redirect to the provider."""
        response = client.post("/accounts/oidc/sso/login/", {"next": next_url} if next_url else {})
        assert response.status_code == 302, response.content[:500]
        return response["Location"]

    def sign_in(self, client, username: str, next_url: str | None = None):
        """The whole round trip: button, the provider's page, back to Custos's callback."""
        back = self.provider.sign_in(self.start(client, next_url), username, IDP_PASSWORD)
        parts = urlsplit(back)
        return client.get(f"{parts.path}?{parts.query}")


@pytest.fixture
def sso(identity_provider, settings):
    configure(settings, identity_provider)
    return SignOn(identity_provider, settings)
