import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.models import User
from accounts.roles import ALL_ROLES
from audit.events import Action
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_roles_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ALL_ROLES)
    assert set(ALL_ROLES) == {"investigator", "legal_reviewer", "senior_legal_reviewer", "auditor"}


def test_create_user_command(monkeypatch):
    monkeypatch.setenv("CUSTOS_PASSWORD", "correct-horse-battery-staple")
    call_command(
        "create_user", "nora", "--role", "legal_reviewer", "--role", "senior_legal_reviewer", "--email", "n@example.org"
    )
    user = User.objects.get(username="nora")
    assert user.role_names == {"legal_reviewer", "senior_legal_reviewer"}
    assert user.check_password("correct-horse-battery-staple")
    assert not user.is_superuser
    assert AuditEvent.objects.filter(action=Action.USER_CREATED, target_id=str(user.pk)).count() == 1


def test_create_user_command_rejects_weak_password_and_saves_nothing(monkeypatch):
    monkeypatch.setenv("CUSTOS_PASSWORD", "123")
    with pytest.raises(CommandError, match="too short"):
        call_command("create_user", "weak", "--role", "investigator")
    assert not User.objects.filter(username="weak").exists()


def test_create_user_command_needs_a_password(monkeypatch):
    monkeypatch.delenv("CUSTOS_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="CUSTOS_PASSWORD"):
        call_command("create_user", "nopass")


def test_login_and_failed_login_are_audited(client, lead):
    from tests.conftest import PASSWORD

    response = client.post(reverse("account_login"), {"login": "lead", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    failed = AuditEvent.objects.get(action=Action.AUTH_LOGIN_FAILED)
    assert failed.details == {"username": "lead"}
    assert "wrong" not in str(failed.details)

    response = client.post(reverse("account_login"), {"login": "lead", "password": PASSWORD})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action=Action.AUTH_LOGIN, actor=lead).count() == 1

    client.post(reverse("account_logout"))
    assert AuditEvent.objects.filter(action=Action.AUTH_LOGOUT, actor=lead).count() == 1


def test_inactive_user_cannot_log_in(client, inactive_user):
    from tests.conftest import PASSWORD

    response = client.post(reverse("account_login"), {"login": "inactive", "password": PASSWORD})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_navigation_follows_roles(client, auditor, lead):
    client.force_login(lead)
    page = client.get(reverse("home")).content.decode()
    assert "Investigator</li>" in page and "My cases</a>" in page and "Audit trail</a>" not in page
    client.force_login(auditor)
    page = client.get(reverse("home")).content.decode()
    assert "Auditor</li>" in page and "Audit trail</a>" in page and "My cases</a>" not in page
