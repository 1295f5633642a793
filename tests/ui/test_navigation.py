"""Navigation: breadcrumbs case → request → grant → query, references as links, the case's grants and queries."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _crumbs(html: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Breadcrumb".*?</nav>', html, re.S).group(0)
    return re.findall(r'<a href="([^"]+)"', nav)


def test_query_page_breadcrumbs_walk_back_to_the_case(succeeded_query, lead, client):
    client.force_login(lead)
    grant = succeeded_query.grant
    html = client.get(reverse("investigations:query_detail", args=[succeeded_query.pk])).content.decode()
    assert _crumbs(html) == [
        reverse("investigations:case_list"),
        reverse("investigations:case_detail", args=[grant.case_id]),
        reverse("investigations:request_detail", args=[grant.request_id]),
        reverse("investigations:grant_detail", args=[grant.pk]),
        reverse("investigations:query_detail", args=[succeeded_query.pk]),
    ]
    assert f'aria-current="page">Query #{succeeded_query.pk}</a>' in html


def test_case_page_lists_its_grants_and_their_queries(succeeded_query, lead, outsider, client):
    client.force_login(lead)
    grant = succeeded_query.grant
    html = client.get(reverse("investigations:case_detail", args=[grant.case_id])).content.decode()
    assert f'href="{reverse("investigations:grant_detail", args=[grant.pk])}">Grant {grant.pk}</a>' in html
    assert (
        f'href="{reverse("investigations:query_detail", args=[succeeded_query.pk])}">Query #{succeeded_query.pk}</a>'
        in html
    )


def test_case_page_hides_grants_and_queries_the_viewer_may_not_see(succeeded_query, member, client):
    # member is on the team but holds no grant: the grant list comes from grants_visible_to
    from investigations.access import grants_visible_to, queries_visible_to

    client.force_login(member)
    grant = succeeded_query.grant
    html = client.get(reverse("investigations:case_detail", args=[grant.case_id])).content.decode()
    assert (f"Grant {grant.pk}</a>" in html) == grants_visible_to(member).filter(pk=grant.pk).exists()
    assert (f"Query #{succeeded_query.pk}</a>" in html) == queries_visible_to(member).filter(
        pk=succeeded_query.pk
    ).exists()


def test_audit_targets_read_as_words_and_link_to_their_events(succeeded_query, auditor, client):
    client.force_login(auditor)
    html = client.get(reverse("audit:event_list"), {"target_type": "investigations.dataquery"}).content.decode()
    reference = succeeded_query.grant.case.reference
    assert f"Query #{succeeded_query.pk} on {reference}</a>" in html
    assert "target_type=investigations.dataquery&amp;target_id=" in html
    event = AuditEvent.objects.filter(target_type="investigations.dataquery").first()
    detail = client.get(reverse("audit:event_detail", args=[event.seq])).content.decode()
    assert f"Query #{succeeded_query.pk} on {reference}</a>" in detail


def test_request_page_breadcrumbs_end_at_the_request(active_grant, lead, client):
    client.force_login(lead)
    html = client.get(reverse("investigations:request_detail", args=[active_grant.request_id])).content.decode()
    assert _crumbs(html)[-1] == reverse("investigations:request_detail", args=[active_grant.request_id])


def _case_link(case) -> str:
    return f'<a href="{reverse("investigations:case_detail", args=[case.pk])}">{case.reference}</a>'


def test_start_page_links_every_case_reference(active_grant, lead, reviewer, second_reviewer, client):
    from investigations import actions
    from tests.investigations.fixtures import file_request

    case = active_grant.case
    waiting = actions.request_submit(actor=lead, request=file_request(case, lead))
    actions.task_create(actor=lead, case=case, title="Interview", assignee=lead)
    client.force_login(lead)
    html = client.get(reverse("home")).content.decode()
    assert f"Request {waiting.pk}</a> on {_case_link(case)}" in html
    assert f"Grant {active_grant.pk}</a> on {_case_link(case)}" in html
    assert f"Interview</a> on {_case_link(case)}" in html
    client.force_login(second_reviewer)  # reviewer approved the case: someone independent decides
    html = client.get(reverse("home")).content.decode()
    assert f"Request {waiting.pk}</a> on {_case_link(case)}" in html


def test_oversight_pages_link_references_into_the_ledger(
    succeeded_query, protected_request, auditor, lead, reviewer, client
):
    # auditors see no case, request or grant page: references open the ledger, never a 404
    from audit.templatetags.audit_format import trail_url
    from investigations.actions.oversight import alerts_scan
    from investigations.models import Alert, GrantReport

    grant = succeeded_query.grant
    alerts_scan()
    alert = Alert.objects.filter(request=protected_request).first()
    Alert.objects.filter(pk=alert.pk).update(grant=grant, query=succeeded_query)
    client.force_login(auditor)
    html = client.get(reverse("investigations:alert_detail", args=[alert.pk])).content.decode()
    links = {
        f"Request #{protected_request.pk}": trail_url("investigations.datapullrequest", protected_request.pk),
        f"Grant #{grant.pk}": trail_url("investigations.grant", grant.pk),
        f"Query #{succeeded_query.pk}": trail_url("investigations.dataquery", succeeded_query.pk),
    }
    for label, url in links.items():
        assert f'<a href="{url.replace("&", "&amp;")}">{label}</a>' in html
        trail = client.get(url)
        assert trail.status_code == 200 and label in trail.content.decode(), f"{label}: its trail is empty"
    assert client.get(reverse("investigations:grant_detail", args=[grant.pk])).status_code == 404

    from investigations import actions

    actions.grant_revoke(actor=reviewer, grant=grant, reason="Done.")
    alerts_scan()
    report = GrantReport.objects.get(grant=grant)
    timeline = reverse("audit:case_timeline", args=[grant.case.reference])
    listed = client.get(reverse("investigations:report_list")).content.decode()
    assert f'<a href="{timeline}">{grant.case.reference}</a>' in listed
    detail = client.get(reverse("investigations:report_detail", args=[report.pk])).content.decode()
    assert f'<a href="{timeline}"><strong>{grant.case.reference}</strong></a>' in detail
    assert trail_url("investigations.grant", grant.pk).replace("&", "&amp;") in detail
    client.force_login(lead)  # the team reads the same report with links to its own pages
    detail = client.get(reverse("investigations:report_detail", args=[report.pk])).content.decode()
    assert f'href="{reverse("investigations:case_detail", args=[grant.case_id])}"><strong>' in detail
    assert f'<a href="{reverse("investigations:grant_detail", args=[grant.pk])}">Grant {grant.pk}</a>' in detail


def test_action_pages_lead_back_to_their_case_request_and_grant(
    succeeded_query, lead, reviewer, evidence_store, client
):
    """Each page that acts on a case, request or grant has the breadcrumbs to them, and what it names links."""
    from investigations import actions
    from tests.investigations.fixtures import file_request, open_case_for

    grant = succeeded_query.grant
    case = grant.case
    draft = file_request(case, lead)
    note = actions.case_add_note(actor=lead, case=case, text="Seen.")
    task = actions.task_create(actor=lead, case=case, title="Interview")
    case_url = reverse("investigations:case_detail", args=[case.pk])
    request_url = reverse("investigations:request_detail", args=[draft.pk])
    grant_url = reverse("investigations:grant_detail", args=[grant.pk])
    pages = {
        "case_close": ([case.pk], [case_url]),
        "case_members": ([case.pk], [case_url]),
        "case_timeline": ([case.pk], [case_url]),
        "task_create": ([case.pk], [case_url]),
        "task_edit": ([task.pk], [case_url]),
        "note_edit": ([note.pk], [case_url]),
        "note_history": ([note.pk], [case_url]),
        "request_create": ([case.pk], [case_url]),
        "request_edit": ([draft.pk], [case_url, request_url]),
        "request_withdraw": ([draft.pk], [case_url, request_url]),
        "grant_revoke": ([grant.pk], [case_url, grant_url]),
        "query_save_evidence": ([succeeded_query.pk], [case_url, grant_url]),
    }
    client.force_login(lead)
    for name, (args, targets) in pages.items():
        response = client.get(reverse(f"investigations:{name}", args=args))
        assert response.status_code == 200, name
        html = response.content.decode()
        for target in targets:
            assert target in _crumbs(html), f"{name}: no breadcrumb to {target}"
    body = {
        "request_edit": f'href="{case_url}"><strong>{case.reference}</strong></a>',
        "request_withdraw": f'Case <a href="{case_url}">{case.reference}</a>.',
        "grant_revoke": f'Case <a href="{case_url}">{case.reference}</a>.',
        "query_save_evidence": f'when <a href="{grant_url}">grant {grant.pk}</a> ends',
    }
    for name, expected in body.items():
        html = client.get(reverse(f"investigations:{name}", args=pages[name][0])).content.decode()
        assert expected in html, name
    saved, _ = actions.evidence_save_query_result(actor=lead, query=succeeded_query)
    html = client.get(reverse("investigations:evidence_detail", args=[saved.pk])).content.decode()
    assert f'grantees of <a href="{grant_url}">grant {grant.pk}</a>' in html
    pending = open_case_for(lead, None)  # awaiting approval: the lead may still edit it
    html = client.get(reverse("investigations:case_edit", args=[pending.pk])).content.decode()
    assert reverse("investigations:case_detail", args=[pending.pk]) in _crumbs(html)
    client.force_login(reviewer)
    html = client.get(reverse("investigations:case_reject", args=[pending.pk])).content.decode()
    assert reverse("investigations:case_detail", args=[pending.pk]) in _crumbs(html)


def test_protected_approval_confirmation_links_its_case_and_request(protected_request, reviewer, client):
    url = reverse("investigations:request_decide", args=[protected_request.pk])
    client.force_login(reviewer)
    data = {"outcome": "approve_narrowed", "reason": "Only profile.", "subjects": ["1", "2"], "categories": ["profile"]}
    html = client.post(url, data).content.decode()
    assert "Oversight is notified of this approval" in html
    case_url = reverse("investigations:case_detail", args=[protected_request.case_id])
    request_url = reverse("investigations:request_detail", args=[protected_request.pk])
    assert f'<dd><a href="{case_url}">{protected_request.case.reference}</a>' in html
    assert f'<dd><a href="{request_url}">Request {protected_request.pk}</a>, filed by' in html
    assert _crumbs(html)[1:3] == [case_url, request_url]


def test_alert_acknowledge_page_links_its_alert(protected_request, auditor, client):
    from investigations.actions.oversight import alerts_scan
    from investigations.models import Alert

    alerts_scan()
    alert = Alert.objects.first()
    client.force_login(auditor)
    html = client.get(reverse("investigations:alert_acknowledge", args=[alert.pk])).content.decode()
    assert f'<a href="{reverse("investigations:alert_detail", args=[alert.pk])}">Alert {alert.pk}</a>:' in html


def test_start_page_links_a_query_case_only_while_its_team_sees_it(
    open_case, member, lead, second_reviewer, store, client
):
    from custos_testing.factories import GrantActionFactory, QueryActionFactory
    from investigations import actions
    from tests.investigations.fixtures import file_request

    request = actions.request_submit(actor=member, request=file_request(open_case, member))
    grant = GrantActionFactory(request=request, reviewer=second_reviewer)
    query = QueryActionFactory(grant=grant, user=member, category="ip_logs")
    client.force_login(member)
    assert f"Query {query.pk}</a> ip_logs on {_case_link(open_case)}:" in client.get(reverse("home")).content.decode()
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    html = client.get(reverse("home")).content.decode()  # the record stays theirs; the case page does not
    assert f"Query {query.pk}</a> ip_logs on {open_case.reference}:" in html
    assert client.get(reverse("investigations:case_detail", args=[open_case.pk])).status_code == 404
