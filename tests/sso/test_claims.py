"""What Custos reads from the provider's claims: roles (mapped or kept local) and the second factor."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.sso import Assertion
from config.settings import _role_map


@pytest.fixture
def sso_config(settings):
    settings.CUSTOS_SSO = {
        **settings.CUSTOS_SSO,
        "ISSUER": "https://idp.example.org/realms/staff",
        "ROLES_CLAIM": "groups",
        "ROLE_MAP": {
            "custos-investigators": ["investigator"],
            "custos-legal": ["legal_reviewer"],
            "custos-senior-legal": ["legal_reviewer", "senior_legal_reviewer"],
            "custos-auditors": ["auditor"],
        },
        "SECOND_FACTOR_AMR": ["mfa", "otp", "hwk"],
        "SECOND_FACTOR_ACR": ["urn:example:loa:2"],
    }
    return settings.CUSTOS_SSO


def _assertion(**id_token) -> Assertion:
    return Assertion.from_claims({"sub": "s-1", **id_token})


def test_groups_are_mapped_to_roles_and_unknown_groups_give_nothing(sso_config):
    assertion = _assertion(groups=["custos-senior-legal", "everyone", "custos-legal"])
    assert assertion.roles_claimed == ["legal_reviewer", "senior_legal_reviewer"]
    assert _assertion(groups=["everyone"]).roles_claimed == []
    assert _assertion().roles_claimed == []  # the claim is configured but absent: no roles
    assert _assertion(groups="custos-auditors").roles_claimed == ["auditor"]  # a single string


def test_without_a_map_the_claim_names_custos_roles(sso_config):
    sso_config["ROLE_MAP"] = {}
    assert _assertion(groups=["auditor", "admins", "investigator"]).roles_claimed == ["auditor", "investigator"]


def test_without_a_roles_claim_roles_stay_in_custos(sso_config):
    sso_config["ROLES_CLAIM"] = ""
    assert _assertion(groups=["custos-legal"]).roles_claimed is None


@pytest.mark.parametrize(
    ("amr", "acr", "counts"),
    [
        (["pwd", "otp"], None, True),
        (["pwd", "mfa"], None, True),
        (["hwk"], None, True),
        (["pwd"], None, False),
        ([], None, False),
        ("otp", None, True),  # a single string
        (["pwd"], "urn:example:loa:2", True),
        (["pwd"], "urn:example:loa:1", False),
        (["pwd", "sms"], None, False),  # not on the configured list
    ],
)
def test_second_factor_from_amr_or_acr(sso_config, amr, acr, counts):
    claims = {"amr": amr} | ({"acr": acr} if acr else {})
    assert _assertion(**claims).second_factor is counts


def test_amr_and_sub_are_read_from_the_id_token_only(sso_config):
    # userinfo is not signed for this client: it may add profile claims, never the second factor.
    assertion = Assertion.from_claims(
        {"sub": "s-1", "amr": ["pwd"]}, {"sub": "s-1", "amr": ["otp"], "email": "a@x.org"}
    )
    assert assertion.second_factor is False and assertion.email == "a@x.org"
    with pytest.raises(ValueError, match="different subjects"):
        Assertion.from_claims({"sub": "s-1"}, {"sub": "s-2"})


def test_role_map_setting_syntax():
    assert _role_map("a=investigator, b=legal_reviewer+senior_legal_reviewer,/x=y=auditor") == {
        "a": ["investigator"],
        "b": ["legal_reviewer", "senior_legal_reviewer"],
        "/x=y": ["auditor"],
    }
    assert _role_map("") == {}
    with pytest.raises(ImproperlyConfigured):
        _role_map("just-a-group")


def test_a_user_without_a_username_at_the_provider_is_named_after_the_sub(sso_config):
    assert _assertion(preferred_username="ines").new_username == "ines"
    assert Assertion.from_claims({"sub": "auth0|5f1e 2"}).new_username == "sso-auth0-5f1e-2"


def test_the_system_check_names_unknown_roles_in_the_map_and_a_missing_break_glass(sso_config, settings):
    from accounts.checks import single_sign_on

    assert single_sign_on(None) == []
    sso_config["ROLE_MAP"] = {**sso_config["ROLE_MAP"], "custos-admins": ["admin"]}
    assert _assertion(groups=["custos-admins", "custos-legal"]).roles_claimed == ["legal_reviewer"]
    settings.LOCAL_LOGIN, settings.BREAK_GLASS_USERNAME = False, ""
    assert [message.id for message in single_sign_on(None)] == ["accounts.E002", "accounts.W001"]
