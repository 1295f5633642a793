"""The layout, error pages, start pages, a reviewer's decisions and the confirmation steps."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.events import Action
from audit.models import AuditEvent
from config.views import server_error
from investigations import actions
from investigations.actions.oversight import alerts_scan
from investigations.models import Grant, RequestStatus

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def page_of(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, f"{url} answered {response.status_code}"
    return response.content.decode()


def nav_labels(page: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', page, re.S).group(1)
    return re.findall(r">([^<>]+)</a>", nav)


# --- layout ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona, expected",
    [
        ("lead", ["My cases", "New case", "My grants"]),
        ("reviewer", ["Review queue", "Cases to approve", "Decisions"]),
        ("senior_reviewer", ["Review queue", "Cases to approve", "Decisions", "Protected subjects"]),
        ("auditor", ["Audit trail", "Verification", "Alerts", "Scope reports", "Transparency"]),
        ("admin_user", ["Users", "Lockouts", "Protected subjects", "Schedules", "Case templates", "Admin"]),
        ("outsider", []),
    ],
)
def test_navigation_by_role(persona, expected, request, client):
    client.force_login(request.getfixturevalue(persona))
    assert nav_labels(page_of(client, reverse("home"))) == expected


def test_layout_names_the_user_and_roles_and_marks_the_current_page(senior_reviewer, client):
    client.force_login(senior_reviewer)
    page = page_of(client, reverse("investigations:review_queue"))
    assert "Signed in as <strong>senior_reviewer</strong>" in page
    assert '<li class="badge">Legal reviewer</li><li class="badge">Senior legal reviewer</li>' in page
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', page)
    assert current == [reverse("investigations:review_queue")]
    # /review/decisions/ lies under /review/: the longest matching entry is the current one.
    page = page_of(client, reverse("investigations:decision_list"))
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', page) == [reverse("investigations:decision_list")]


def test_layout_has_skip_link_footer_version_and_only_local_assets(lead, client, settings):
    client.force_login(lead)
    page = page_of(client, reverse("investigations:case_create"))
    assert '<a class="skip" href="#main">' in page and '<main id="main"' in page
    assert f"Custos {settings.CUSTOS_VERSION}" in page
    assets = re.findall(r'(?:href|src)="([^"]+\.(?:css|js))"', page)
    assert assets and all(asset.startswith(settings.STATIC_URL) or asset.startswith("/static/") for asset in assets)
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_messages_are_announced(lead, client):
    client.force_login(lead)
    response = client.post(
        reverse("investigations:case_create"),
        {"title": "A case", "allegation": "Something.", "case_type": "fraud", "purpose": "Find out."},
        follow=True,
    )
    assert 'role="status">Case INV-' in response.content.decode()


# --- error pages -------------------------------------------------------------------------


def test_404_is_in_the_layout_and_says_nothing_more(lead, client):
    client.force_login(lead)
    page = page_of(client, "/cases/999999/", status=404)
    assert "<h1>Not found</h1>" in page and 'aria-label="Main"' in page
    assert "999999" not in page.split("<main", 1)[1]


def test_403_shows_only_our_message(open_case, member, client):
    client.force_login(member)
    page = page_of(client, reverse("investigations:case_close", args=[open_case.pk]), status=403)
    assert "Only the case lead may close the case." in page and "Traceback" not in page


def test_csrf_failure_page_is_in_the_layout_and_changes_nothing(lead):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    response = client.post(
        reverse("investigations:case_create"),
        {"title": "A case", "allegation": "Something.", "case_type": "fraud", "purpose": "Find out."},
    )
    page = response.content.decode()
    assert response.status_code == 403 and "The form could not be accepted" in page
    assert "CSRF" not in page and "token" not in page.lower().split("<main", 1)[1]
    assert not AuditEvent.objects.filter(action=Action.CASE_OPENED).exists()


def test_400_page_is_in_the_layout(rf):
    from django.views.defaults import bad_request

    response = bad_request(rf.get("/"), exception=Exception("secret detail"))
    assert response.status_code == 400
    assert b"<h1>Bad request</h1>" in response.content and b"secret detail" not in response.content


@pytest.mark.django_db(databases=[])
def test_500_page_needs_no_database_and_no_request_context():
    # Database access is blocked here: the page must render anyway.
    response = server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in page and 'href="/static/css/custos.css"' in page


def test_500_page_falls_back_when_the_template_breaks(settings):
    response = server_error(RequestFactory().get("/"), template_name="does-not-exist.html")
    assert response.status_code == 500 and b"Something went wrong" in response.content


def test_unhandled_error_gives_the_500_page(lead, client, monkeypatch):
    from investigations.views import dashboard

    def broken(user):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(dashboard, "_investigator", broken)
    client.raise_request_exception = False
    client.force_login(lead)
    response = client.get(reverse("home"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content and b"hunter2" not in response.content


# --- start pages --------------------------------------------------------------------------


def test_investigator_start_page(active_grant, lead, open_case, client):
    pending = actions.case_open(actor=lead, title="Pending one", allegation="A.", case_type="fraud", purpose="B.")
    client.force_login(lead)
    page = page_of(client, reverse("home"))
    assert pending.reference in page and open_case.reference in page
    assert f"Grant {active_grant.pk}</a>" in page
    assert f'<time datetime="{active_grant.expires_at.isoformat()}" data-countdown>' in page
    assert "js/countdown.js" in page
    assert "Nothing waits for legal." in page  # the fixture's request was approved


def test_investigator_start_page_lists_requests_awaiting_decision(submitted_request, lead, member, client):
    client.force_login(member)  # a colleague on the team sees it too
    page = page_of(client, reverse("home"))
    assert f"Request {submitted_request.pk}</a>" in page


def test_outsider_start_page_lists_nothing_of_the_case(active_grant, other_investigator, client):
    client.force_login(other_investigator)
    page = page_of(client, reverse("home"))
    assert active_grant.case.reference not in page and f"Grant {active_grant.pk}" not in page


def test_reviewer_start_page_oldest_first_with_protected_flag(protected_request, lead, reviewer, client):
    newer = actions.case_open(actor=lead, title="Newer", allegation="A.", case_type="fraud", purpose="B.")
    older = actions.case_open(actor=lead, title="Older", allegation="A.", case_type="fraud", purpose="B.")
    type(older).objects.filter(pk=older.pk).update(updated_at=newer.updated_at.replace(year=2020))
    client.force_login(reviewer)
    page = page_of(client, reverse("home"))
    assert page.index(older.reference) < page.index(newer.reference)
    assert f"Request {protected_request.pk}</a>" in page
    assert "protected subject</span> 0 of 2 approvals" in page


def test_reviewer_start_page_hides_requests_they_may_not_decide(submitted_request, lead, client):
    from accounts.roles import Role
    from tests.conftest import make_legacy_user

    member_reviewer = make_legacy_user("member_reviewer", [Role.LEGAL_REVIEWER, Role.INVESTIGATOR])
    actions.case_add_member(actor=lead, case=submitted_request.case, user=member_reviewer)
    client.force_login(member_reviewer)
    page = page_of(client, reverse("home"))
    assert f'href="{reverse("investigations:request_decide", args=[submitted_request.pk])}"' not in page


def test_auditor_start_page_counts_today_and_is_recorded(open_case, member, auditor, client):
    from investigations.access import record_denial

    record_denial(actor=member, case=open_case, perm="close_case")
    client.force_login(auditor)
    before = AuditEvent.objects.count()
    page = page_of(client, reverse("home"))
    numbers = [int(n) for n in re.findall(r'<span class="number">(\d+)</span>', page)]
    assert numbers[0] == before and numbers[1] >= 1
    assert "not run yet" in page
    viewed = AuditEvent.objects.filter(action=Action.AUDIT_VIEWED).latest("seq")
    assert viewed.details["page"] == "dashboard" and viewed.actor_username == "auditor"


def test_non_auditor_start_page_shows_no_audit_numbers(lead, client):
    client.force_login(lead)
    assert '<span class="number">' not in page_of(client, reverse("home"))
    assert not AuditEvent.objects.filter(action=Action.AUDIT_VIEWED).exists()


# --- a reviewer's decisions -----------------------------------------------------------------


def test_decisions_page_lists_own_decisions_newest_first(open_case, lead, reviewer, second_reviewer, store, client):
    from tests.investigations.fixtures import file_request

    first = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    second = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("3",)))
    actions.request_decide(actor=second_reviewer, request=first, outcome="reject", reason="Too broad.")
    actions.request_decide(actor=second_reviewer, request=second, outcome="approve")
    client.force_login(second_reviewer)
    page = page_of(client, reverse("investigations:decision_list"))
    assert page.index(f"Request {second.pk}</a>") < page.index(f"Request {first.pk}</a>")
    assert "Too broad." in page
    client.force_login(reviewer)  # decided nothing
    assert "You have not decided any request yet." in page_of(client, reverse("investigations:decision_list"))


@pytest.mark.parametrize("persona", ["lead", "auditor", "admin_user", "outsider"])
def test_decisions_page_is_for_reviewers(persona, request, client):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("investigations:decision_list")).status_code == 403


# --- grant page ---------------------------------------------------------------------------


def test_grant_page_shows_frozen_scope_countdown_and_the_scoped_query_form(active_grant, lead, member, client):
    client.force_login(lead)
    page = page_of(client, reverse("investigations:grant_detail", args=[active_grant.pk]))
    assert "Approved scope (frozen)" in page and "data-countdown" in page
    assert f'action="{reverse("investigations:query_create", args=[active_grant.pk])}"' in page
    options = re.findall(r'<option value="([^"]+)"', page)
    assert sorted(options) == sorted(active_grant.categories)
    assert sorted(re.findall(r'name="subjects" value="(\d+)"', page)) == ["1", "2"]
    client.force_login(member)  # on the team, not a grantee: no form
    assert 'name="category"' not in page_of(client, reverse("investigations:grant_detail", args=[active_grant.pk]))


# --- confirmation: approving a protected-subject request ------------------------------------


def test_protected_approval_needs_a_confirmation_that_names_oversight(
    protected_request, reviewer, senior_reviewer, client, settings, django_capture_on_commit_callbacks
):
    settings.OVERSIGHT_EMAILS = ["oversight@example.org"]
    url = reverse("investigations:request_decide", args=[protected_request.pk])
    client.force_login(reviewer)
    response = client.post(url, {"outcome": "approve_narrowed", "reason": "Only profile.", "subjects": ["1", "2"],
                                 "categories": ["profile"]})
    page = response.content.decode()
    assert response.status_code == 200 and "Oversight is notified of this approval" in page
    assert not protected_request.decisions.exists()  # nothing decided yet
    assert 'name="categories" value="profile"' in page and 'name="confirm_protected" value="yes"' in page
    mail.outbox.clear()
    data = {"outcome": "approve_narrowed", "reason": "Only profile.", "subjects": ["1", "2"], "categories": ["profile"]}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {**data, "confirm_protected": "yes"}).status_code == 302
    decision = protected_request.decisions.get()
    assert decision.categories == ["profile"] and not Grant.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        alerts_scan()  # what the worker runs on commit of the decision
    oversight = [message for message in mail.outbox if "oversight@example.org" in message.to]
    decided = [message for message in oversight if "approve_narrowed" in message.body]
    assert len(decided) == 1 and "decided" in decided[0].subject.lower()
    client.force_login(senior_reviewer)
    assert client.post(url, {"outcome": "approve"}).status_code == 200  # confirmation again
    assert not Grant.objects.exists()
    assert client.post(url, {"outcome": "approve", "confirm_protected": "yes"}).status_code == 302
    assert Grant.objects.get().categories == ["profile"]


def test_change_from_the_confirmation_returns_to_the_form_with_values(protected_request, reviewer, client):
    url = reverse("investigations:request_decide", args=[protected_request.pk])
    client.force_login(reviewer)
    response = client.post(url, {"outcome": "approve", "reason": "Keep this text.", "change": "1",
                                 "confirm_protected": "yes"})
    assert response.status_code == 200 and "Keep this text." in response.content.decode()
    assert re.search(r'name="outcome" value="approve"[^>]*checked', response.content.decode())
    assert not protected_request.decisions.exists()
    protected_request.refresh_from_db()
    assert protected_request.status == RequestStatus.SUBMITTED


def test_rejecting_a_protected_request_needs_no_confirmation(protected_request, reviewer, client):
    url = reverse("investigations:request_decide", args=[protected_request.pk])
    client.force_login(reviewer)
    assert client.post(url, {"outcome": "reject", "reason": "No."}).status_code == 302
