"""The everyday-UI defects of issue 19, each pinned by a view test that failed before the fix."""

from __future__ import annotations

import json
import re

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils.html import escape

from accounts.middleware import KEPT_INPUT
from accounts.timeouts import SEEN_AT, SIGNED_IN_AT
from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.models import Grant, RequestStatus
from tests.conftest import PASSWORD
from tests.investigations.fixtures import narrowed

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


# --- 1. decide form: a plain approval never drops scope edits -------------------------------


def _decide_data(data_request, **change) -> dict:
    return {
        "outcome": "approve",
        "reason": "",
        "subjects": [str(s) for s in data_request.subjects],
        "categories": list(data_request.categories),
        "window_start": data_request.window_start.isoformat(),
        "window_end": data_request.window_end.isoformat(),
        "duration_hours": str(data_request.duration_hours),
        **change,
    }


@pytest.mark.parametrize(
    "change",
    [{"subjects": ["1"]}, {"categories": ["ip_logs"]}, {"duration_hours": "2"}, {"window_start": "window_end"}],
)
def test_plain_approval_with_an_edited_scope_is_refused(submitted_request, reviewer, client, change):
    if change == {"window_start": "window_end"}:
        change = {"window_start": submitted_request.window_end.isoformat()}
    client.force_login(reviewer)
    url = reverse("investigations:request_decide", args=[submitted_request.pk])
    response = client.post(url, _decide_data(submitted_request, **change))
    assert response.status_code == 200
    assert (
        "Approve, narrowed" in response.content.decode()
        and "You changed the approved scope" in response.content.decode()
    )
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.SUBMITTED and not Grant.objects.exists()


def test_plain_approval_with_the_requested_scope_grants_it(submitted_request, reviewer, client):
    client.force_login(reviewer)
    url = reverse("investigations:request_decide", args=[submitted_request.pk])
    assert client.post(url, _decide_data(submitted_request)).status_code == 302
    assert Grant.objects.get(request=submitted_request).subjects == submitted_request.subjects


def test_decide_page_loads_its_script_and_no_inline_script(submitted_request, reviewer, client):
    client.force_login(reviewer)
    page = client.get(reverse("investigations:request_decide", args=[submitted_request.pk])).content.decode()
    assert "js/decide.js" in page and "data-decide" in page
    assert "<script>" not in page


# --- 2. the grant page's query form speaks ISO dates ------------------------------------------


def test_grant_page_prefills_the_window_in_iso_with_limits(active_grant, lead, client):
    client.force_login(lead)
    page = client.get(reverse("investigations:grant_detail", args=[active_grant.pk])).content.decode()
    start, end = active_grant.window_start.isoformat(), active_grant.window_end.isoformat()
    assert f'name="window_start" value="{start}"' in page
    assert f'name="window_end" value="{end}"' in page
    assert f'min="{start}"' in page and f'max="{end}"' in page
    assert "js/query-form.js" in page and "data-window-check" in page


# --- 3. profile queries: the current profile, whatever the window -----------------------------


def test_profile_query_returns_the_current_profile(active_grant, lead):
    query = actions.query_execute_now(actor=lead, grant=active_grant, category="profile")
    assert query.status == "succeeded" and query.row_count == 2
    assert query.empty_reason == ""


def test_the_pages_say_the_window_does_not_limit_the_profile(active_grant, lead, client):
    client.force_login(lead)
    grant_page = client.get(reverse("investigations:grant_detail", args=[active_grant.pk])).content.decode()
    assert "Profile: the account as it is now, whatever the window." in grant_page
    profile = actions.query_execute_now(actor=lead, grant=active_grant, category="profile")
    ip_logs = actions.query_execute_now(actor=lead, grant=active_grant, category="ip_logs")
    shown = client.get(reverse("investigations:query_detail", args=[profile.pk])).content.decode()
    assert "(not applied: Profile is the account as it is now, not limited by the window)" in shown
    assert "not applied" not in client.get(reverse("investigations:query_detail", args=[ip_logs.pk])).content.decode()


def test_result_columns_are_named_as_people_say_them(active_grant, lead, client):
    query = actions.query_execute_now(actor=lead, grant=active_grant, category="ip_logs")
    client.force_login(lead)
    page = client.get(reverse("investigations:query_results", args=[query.pk])).content.decode()
    headings = re.findall(r'<th scope="col">([^<]*)</th>', page)
    assert headings == ["Account", "IP address", "User agent", "Occurred at"]
    download = client.get(reverse("investigations:query_download", args=[query.pk])).content
    assert download.decode().splitlines()[0] == "account_id,ip,user_agent,occurred_at"  # the CSV keeps the names


def test_an_empty_result_says_why(active_grant, lead, client):
    day = active_grant.window_start
    query = actions.query_execute_now(
        actor=lead, grant=active_grant, category="ip_logs", window_start=day, window_end=day, subjects=[1]
    )
    if query.row_count:
        pytest.skip("the seeded store happens to hold a login on that day")
    client.force_login(lead)
    page = client.get(reverse("investigations:query_detail", args=[query.pk])).content.decode()
    assert f"have no IP logs recorded from {day:%Y-%m-%d} to {day:%Y-%m-%d}" in page
    status = client.get(reverse("investigations:query_status", args=[query.pk])).json()
    assert "no IP logs" in status["empty_reason"]


# --- 4. an expired session keeps the typed input and stops the poller -------------------------


def _session_timed_out(client, user) -> None:
    """``user`` signed in on this browser, then left it idle past the timeout."""
    client.force_login(user)
    session = client.session
    idle = int(settings.SESSION_IDLE_TIMEOUT.total_seconds()) + 1
    session[SIGNED_IN_AT] -= idle
    session[SEEN_AT] -= idle
    session.save()


def _post_note_after_timeout(client, case, user, text: str):
    _session_timed_out(client, user)
    case_url = reverse("investigations:case_detail", args=[case.pk])
    note_url = reverse("investigations:case_note_add", args=[case.pk])
    response = client.post(note_url, {"text": text}, HTTP_REFERER=f"http://testserver{case_url}")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('account_login')}?next={case_url}"
    return response, case_url, note_url


def test_post_after_the_session_ended_returns_to_the_form_page_with_the_input(open_case, lead, client):
    response, case_url, note_url = _post_note_after_timeout(client, open_case, lead, "Witness B confirmed the dates.")
    after_login = client.post(response["Location"], {"login": lead.username, "password": PASSWORD})
    assert after_login.status_code == 302 and after_login["Location"] == case_url
    page = client.get(case_url).content.decode()
    assert "Your session had ended" in page and "js/keep-input.js" in page
    assert "Witness B confirmed the dates." in page and note_url in page
    # handed over once
    assert "Your session had ended" not in client.get(case_url).content.decode()


def test_kept_input_is_never_offered_to_the_next_user_of_the_browser(open_case, lead, member, client):
    """The insider's attack: a colleague's session timed out with a note half-sent; the next
    person to sign in on that browser must not be handed what the colleague typed."""
    response, case_url, _ = _post_note_after_timeout(client, open_case, lead, "Witness B named the source.")
    after_login = client.post(response["Location"], {"login": member.username, "password": PASSWORD})
    assert after_login.status_code == 302
    page = client.get(case_url).content.decode()
    assert "Witness B named the source." not in page and "Your session had ended" not in page
    # dropped, not kept for later: the one who typed it does not get it back on this session either
    assert KEPT_INPUT not in client.session


def test_only_the_first_form_posted_after_the_timeout_is_kept(open_case, lead, client):
    """Someone who finds the timed-out browser cannot plant text for its owner to send unread:
    what is kept is the form the owner posted when the session ended, and nothing after it."""
    response, case_url, note_url = _post_note_after_timeout(client, open_case, lead, "Witness B confirmed the dates.")
    planted = client.post(note_url, {"text": "Planted: approve it all."}, HTTP_REFERER=f"http://testserver{case_url}")
    assert planted.status_code == 302
    client.post(response["Location"], {"login": lead.username, "password": PASSWORD})
    page = client.get(case_url).content.decode()
    assert "Witness B confirmed the dates." in page and "Planted" not in page


def test_input_posted_without_a_signed_in_session_is_not_kept(open_case, lead, client):
    """A form posted by a browser no one was signed in on (or whose session is gone, so whose it
    was is unknown) is bound to no one: nothing is kept to hand to whoever signs in next."""
    case_url = reverse("investigations:case_detail", args=[open_case.pk])
    note_url = reverse("investigations:case_note_add", args=[open_case.pk])
    response = client.post(note_url, {"text": "Planted text."}, HTTP_REFERER=f"http://testserver{case_url}")
    assert response["Location"] == f"{reverse('account_login')}?next={case_url}"
    client.post(response["Location"], {"login": lead.username, "password": PASSWORD})
    assert "Planted text." not in client.get(case_url).content.decode()


def test_status_poll_after_the_session_ended_answers_401_json(succeeded_query, client):
    response = client.get(reverse("investigations:query_status", args=[succeeded_query.pk]))
    assert response.status_code == 401 and response.json()["signed_out"] is True


# --- 5. returned requests on the investigator's start page, reason on the edit form -----------


def test_returned_request_on_start_page_and_reason_on_edit_form(submitted_request, reviewer, lead, client):
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="return", reason="Name the Q3 window.")
    client.force_login(lead)
    start = client.get(reverse("home")).content.decode()
    edit_url = reverse("investigations:request_edit", args=[submitted_request.pk])
    assert "Returned for changes" in start and edit_url in start
    edit = client.get(edit_url).content.decode()
    assert "Name the Q3 window." in edit and reviewer.display_name in edit


# --- 6. the auditor's denial count and the page its link opens agree --------------------------


def test_denial_count_matches_the_linked_list(auditor, client):
    client.post(reverse("account_login"), {"login": "nobody", "password": "wrong"})  # a failed login
    client.force_login(auditor)
    start = client.get(reverse("home"))
    denials = start.context["auditor"].denials
    assert denials >= 1  # the failed login is a denial, and was not on the linked page
    link = f"{reverse('audit:event_list')}?date_from={start.context['auditor'].since:%Y-%m-%d}&action=denials"
    assert link.replace("&", "&amp;") in start.content.decode()
    listed = client.get(link).context["events"]
    assert len(listed) == denials


# --- 7. audit export uses the boxes; details are JSON ---------------------------------------


def test_export_buttons_submit_the_filter_form(auditor, client):
    client.force_login(auditor)
    page = client.get(reverse("audit:event_list") + "?action=auth.login").content.decode()
    export = reverse("audit:export")
    assert f'formaction="{export}" name="format" value="csv"' in page
    assert f'href="{export}?' not in page  # no link frozen on the last applied filter


def test_event_details_are_formatted_json(auditor, open_case, client):
    client.force_login(auditor)
    event = AuditEvent.objects.filter(action=Action.CASE_APPROVED).order_by("-seq").first() or AuditEvent.objects.last()
    page = client.get(reverse("audit:event_detail", args=[event.seq])).content.decode()
    expected = json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False)
    assert escape(expected) in page
    assert "{&#x27;" not in page  # no Python dict repr


# --- 9. e-mails carry absolute links ---------------------------------------------------------


@override_settings(SITE_URL="https://custos.example.org")
def test_decision_email_links_are_absolute(
    submitted_request, reviewer, django_capture_on_commit_callbacks, deliver_mail
):
    with django_capture_on_commit_callbacks(execute=True):
        actions.request_decide(actor=reviewer, request=submitted_request, outcome="reject", reason="No basis.")
    body = deliver_mail()[-1].body
    assert f"https://custos.example.org/requests/{submitted_request.pk}/" in body


@override_settings(SITE_URL="https://custos.example.org")
def test_every_email_link_is_absolute(
    open_case, store, lead, member, second_reviewer, monkeypatch, django_capture_on_commit_callbacks, deliver_mail
):
    """Each e-mail that carries a link, the workspace's (task assigned, mention) included."""
    from datetime import timedelta

    from django.utils import timezone

    from investigations import notify
    from investigations.actions import lifecycle
    from tests.investigations.fixtures import file_request

    links: dict[str, str] = {}
    rendered_for = notify.rendered_for

    def spy(name, recipients, context):
        links[name] = context.get("url", "")
        return rendered_for(name, recipients, context)

    monkeypatch.setattr(notify, "rendered_for", spy)
    with django_capture_on_commit_callbacks(execute=True):
        data_request = actions.request_submit(actor=lead, request=file_request(open_case, lead))
        actions.request_decide(actor=second_reviewer, request=data_request, outcome="approve")
        data_request.refresh_from_db()
        Grant.objects.filter(pk=data_request.grant.pk).update(expires_at=timezone.now() + timedelta(minutes=30))
        lifecycle.grants_warn_expiring()
        actions.task_create(actor=lead, case=open_case, title="Interview", assignee=member)
        actions.case_add_note(actor=lead, case=open_case, text=f"@{member.username} see the interview.")
    expected = {"request-submitted", "request-decided", "grant_expiring", "task-assigned", "note-mention"}
    assert expected <= set(links), sorted(links)
    relative = {name: link for name, link in links.items() if not link.startswith("https://custos.example.org/")}
    assert not relative, relative
    bodies = "\n".join(message.body for message in deliver_mail())
    assert f"https://custos.example.org/cases/{open_case.pk}/#task-" in bodies
    assert f"https://custos.example.org/cases/{open_case.pk}/#note-" in bodies


# --- 10. narrowed badge, severity styles, the stale "queued" message (its removal: e2e/test_page_scripts.py) --


def test_narrowed_approval_shows_a_narrowed_badge(submitted_request, reviewer, lead, client):
    actions.request_decide(
        actor=reviewer,
        request=submitted_request,
        outcome="approve_narrowed",
        reason="One subject is enough.",
        scope=narrowed(submitted_request, subjects=(1,)),
    )
    client.force_login(lead)
    page = client.get(reverse("investigations:request_detail", args=[submitted_request.pk])).content.decode()
    assert "Approved, narrowed</span>" in page


def test_query_queued_message_is_marked_for_removal(active_grant, lead, client, django_capture_on_commit_callbacks):
    client.force_login(lead)
    url = reverse("investigations:query_create", args=[active_grant.pk])
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(url, {"category": "ip_logs", "page_size": "100"}, follow=True)
    page = response.content.decode()
    assert 'class="message query-queued success"' in page or 'class="message success query-queued"' in page
    assert "js/query-status.js" in page


def _css_rule(selector: str) -> str:
    from pathlib import Path

    css = (Path(settings.BASE_DIR) / "static" / "css" / "custos.css").read_text()
    rule = re.search(rf"^{re.escape(selector)}\s*\{{([^}}]*)\}}", css, re.M)
    assert rule, f"no rule for {selector}"
    return " ".join(rule.group(1).split())


def test_alert_severities_look_different(protected_request, auditor, client):
    from django.template.loader import render_to_string

    from investigations.actions import oversight
    from investigations.models import Alert, AlertSeverity

    badges = {
        severity: render_to_string("investigations/_severity.html", {"alert": Alert(severity=severity)})
        for severity in AlertSeverity.values
    }
    for severity, badge in badges.items():
        assert f'class="badge severity-{severity}"' in badge
    looks = {severity: _css_rule(f".badge.severity-{severity}") for severity in AlertSeverity.values}
    assert len(set(looks.values())) == len(looks), f"two severities share a look: {looks}"
    oversight.alerts_scan()
    alert = Alert.objects.first()
    assert alert is not None
    client.force_login(auditor)
    listed = client.get(reverse("investigations:alert_list")).content.decode()
    detail = client.get(reverse("investigations:alert_detail", args=[alert.pk])).content.decode()
    for page in (listed, detail):
        assert f'<span class="badge severity-{alert.severity}">{alert.get_severity_display()}</span>' in page
