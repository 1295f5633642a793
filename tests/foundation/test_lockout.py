"""Lockout on the login page and the admin login, unlocking, the ledger and oversight, and the
one client address that the ledger, the lockout and the throttles share."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.actions import lockout_clear
from audit.context import client_ip
from audit.events import Action
from audit.models import AuditEvent
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def _post(username: str, password: str, *, url: str = LOGIN, address: str = "192.0.2.1", **extra):
    # The login page's form (django-allauth) names the username field "login".
    return Client(REMOTE_ADDR=address).post(url, {"login": username, "password": password}, **extra)


def _logged_in(response) -> bool:
    return "_auth_user_id" in response.wsgi_request.session


def _fail(username: str, times: int, **kwargs) -> None:
    for _ in range(times):
        response = _post(username, "wrong password", **kwargs)
        assert not _logged_in(response)


def test_many_wrong_passwords_then_the_right_one_is_refused(lead, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT)
    response = _post("lead", PASSWORD, address="192.0.2.200")  # even from another address
    assert response.status_code == 429
    assert not _logged_in(response)
    assert "Too many failed sign-in attempts" in response.content.decode()


def test_failures_below_the_limit_do_not_lock(lead, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT - 1)
    response = _post("lead", PASSWORD)
    assert response.status_code == 302 and _logged_in(response)


def test_usernames_differing_in_case_share_one_counter(lead, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        _post(["LEAD", "Lead", "lead", "lEad", "leaD"][number % 5], "wrong", address=f"192.0.2.{10 + number}")
    assert _post("lead", PASSWORD, address="192.0.2.99").status_code == 429


def _page_text(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_the_locked_answer_is_the_same_whether_the_user_exists_or_not(lead, settings):
    # Before any lockout, a wrong password and an unknown user get the same page.
    wrong, unknown = _post("lead", "wrong", address="192.0.2.5"), _post("nobody", "wrong", address="192.0.2.6")
    assert wrong.status_code == unknown.status_code == 200
    assert _page_text(wrong).replace('value="lead"', 'value="nobody"') == _page_text(unknown)
    _fail("lead", settings.AXES_FAILURE_LIMIT - 1, address="192.0.2.1")
    _fail("nobody", settings.AXES_FAILURE_LIMIT - 1, address="192.0.2.2")
    existing, missing = _post("lead", PASSWORD, address="192.0.2.3"), _post("nobody", PASSWORD, address="192.0.2.4")
    assert existing.status_code == missing.status_code == 429
    assert _page_text(existing) == _page_text(missing)


def test_one_address_is_locked_after_failures_against_many_usernames(lead, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        _post(f"guess{number}", "wrong", address="192.0.2.66")
    assert _post("lead", PASSWORD, address="192.0.2.66").status_code == 429
    assert _logged_in(_post("lead", PASSWORD, address="192.0.2.67"))


def test_forwarded_for_is_ignored_without_a_proxy(lead, settings):
    for number in range(settings.AXES_FAILURE_LIMIT):
        _post(f"guess{number}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{number}")
    assert _post("lead", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.250").status_code == 429


def test_the_admin_signs_in_only_through_the_locked_login_page(superuser, settings):
    # The admin's own login form would skip the second factor: it sends to the login page and
    # checks no password itself, so there is no way around the lockout there either.
    response = Client(REMOTE_ADDR="192.0.2.77").post(
        ADMIN_LOGIN, {"username": superuser.username, "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"].startswith(LOGIN) and not _logged_in(response)
    _fail(superuser.username, settings.AXES_FAILURE_LIMIT)
    response = _post(superuser.username, PASSWORD, url=f"{LOGIN}?next=/admin/", address="192.0.2.78")
    assert response.status_code == 429 and not _logged_in(response)


def test_the_lockout_ends_after_the_cool_off(lead, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT)
    assert _post("lead", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert _logged_in(_post("lead", PASSWORD))


def test_a_refused_attempt_during_the_lockout_does_not_extend_it(lead, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT)
    started = AccessAttempt.objects.get().attempt_time
    _post("lead", "wrong")
    _post("lead", PASSWORD)
    assert AccessAttempt.objects.get().attempt_time == started


def test_unlocking_is_an_audited_action(lead, admin_user, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT)
    removed = lockout_clear(actor=admin_user, username="Lead")
    assert removed == 1
    event = AuditEvent.objects.filter(action=Action.AUTH_LOCKOUT_CLEARED).get()
    assert event.actor_id == admin_user.pk and event.target_id == str(lead.pk)
    assert event.details == {"username": "lead", "address": "", "attempts_removed": 1}
    assert _logged_in(_post("lead", PASSWORD))


def test_unlocking_an_address_leaves_the_usernames_locked(lead, admin_user, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT, address="192.0.2.1")
    lockout_clear(actor=admin_user, address="192.0.2.9")  # another address: nothing lifted for lead
    assert _post("lead", PASSWORD, address="192.0.2.2").status_code == 429
    lockout_clear(actor=admin_user, address="192.0.2.1")
    assert _logged_in(_post("lead", PASSWORD, address="192.0.2.2"))


def test_unlock_from_the_admin_goes_through_the_action(lead, superuser, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT)
    staff = Client()
    staff.force_login(superuser)
    changelist = reverse("admin:axes_accessattempt_changelist")
    assert "lead" in staff.get(changelist).content.decode()
    attempt = AccessAttempt.objects.get()
    response = staff.post(changelist, {"action": "unlock_usernames", "_selected_action": [attempt.pk]})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action=Action.AUTH_LOCKOUT_CLEARED, actor_id=superuser.pk).count() == 1
    assert _logged_in(_post("lead", PASSWORD))
    # Attempts cannot be deleted or edited by hand: that would unlock without a record.
    assert staff.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk])).status_code in (403, 302)


def test_a_lockout_is_recorded_once_and_raises_an_oversight_alert(lead, settings):
    _fail("lead", settings.AXES_FAILURE_LIMIT)
    _post("lead", PASSWORD)  # refused during the lockout: a failed login, not a new lockout
    _post("lead", "wrong")
    locked = AuditEvent.objects.filter(action=Action.AUTH_LOCKED_OUT).get()
    assert locked.target_id == str(lead.pk) and locked.ip == "192.0.2.1"
    assert locked.details == {"username": "lead", "address": "192.0.2.1", "failures": settings.AXES_FAILURE_LIMIT}
    failures = AuditEvent.objects.filter(action=Action.AUTH_LOGIN_FAILED).count()
    assert failures == settings.AXES_FAILURE_LIMIT + 2
    alerts_scan()
    alert = Alert.objects.get(kind=AlertKind.SIGN_IN_LOCKED)
    assert alert.user_id == lead.pk and "'lead'" in alert.summary


def test_a_lockout_of_a_username_that_does_not_exist_alerts_too(settings):
    _fail("ghost", settings.AXES_FAILURE_LIMIT)
    alerts_scan()
    alert = Alert.objects.get(kind=AlertKind.SIGN_IN_LOCKED)
    assert alert.user_id is None and "'ghost'" in alert.summary


# --- the client address ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "", "192.0.2.1"),
        (0, "203.0.113.9", "192.0.2.1"),  # no proxy: the header is the client's own claim
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the spoofed left entry is never used
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.5", "203.0.113.9"),
        (2, "203.0.113.9", "203.0.113.9"),  # fewer entries than proxies: the leftmost
        (1, "not an address", "192.0.2.1"),
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
)
def test_client_address(proxies, forwarded, expected, settings):
    settings.CUSTOS_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_the_ledger_records_the_derived_address(lead, settings):
    _post("lead", "wrong", HTTP_X_FORWARDED_FOR="203.0.113.9")
    settings.CUSTOS_PROXY_COUNT = 1
    _post("lead", "wrong", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    ips = list(AuditEvent.objects.filter(action=Action.AUTH_LOGIN_FAILED).order_by("seq").values_list("ip", flat=True))
    assert ips == ["192.0.2.1", "203.0.113.9"]
