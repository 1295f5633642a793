"""Refused single sign-ons on the ledger, and the ones oversight is alerted to."""

from __future__ import annotations

import pytest

from accounts.sso import Assertion, SignOnRefused, record_refusal
from audit.events import Action
from audit.models import AuditEvent
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind, AlertSeverity

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("reason", "severity"),
    [
        ("role_conflict", AlertSeverity.CRITICAL),
        ("deactivated", AlertSeverity.WARNING),
        ("identity_taken", AlertSeverity.WARNING),
    ],
)
def test_refusals_that_matter_raise_an_alert(reason, severity, lead, settings):
    settings.CUSTOS_SSO = {**settings.CUSTOS_SSO, "ROLES_CLAIM": "groups", "ROLE_MAP": {}}
    assertion = Assertion.from_claims(
        {
            "sub": "s-9",
            "preferred_username": "lead",
            "email": "lead@example.org",
            "groups": ["investigator", "legal_reviewer"],
        }
    )
    record_refusal(None, assertion, SignOnRefused(reason, "refused", user=lead))
    event = AuditEvent.objects.get(action=Action.AUTH_SSO_REFUSED)
    assert event.target_id == str(lead.pk)
    assert event.details["reason"] == reason and event.details["roles_claimed"] == ["investigator", "legal_reviewer"]
    alerts_scan()
    alert = Alert.objects.get(kind=AlertKind.SSO_REFUSED)
    assert alert.severity == severity and alert.user_id == lead.pk and "'lead'" in alert.summary
    if reason == "role_conflict":
        assert "investigator, legal_reviewer" in alert.summary


def test_an_identity_not_yet_provisioned_is_recorded_without_an_alert():
    record_refusal(None, Assertion.from_claims({"sub": "s-10"}), SignOnRefused("not_provisioned", "not yet"))
    assert AuditEvent.objects.filter(action=Action.AUTH_SSO_REFUSED, details__reason="not_provisioned").exists()
    alerts_scan()
    assert not Alert.objects.filter(kind=AlertKind.SSO_REFUSED).exists()
