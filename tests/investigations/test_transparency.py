"""The transparency report: publishable figures (small numbers suppressed), signed JSON, auditors only, recorded."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from audit import checkpoints
from audit.events import Action
from audit.models import AuditEvent
from investigations import actions, transparency
from investigations.transparency import SUPPRESSED, Period, suppress_group

from .fixtures import file_request, narrowed

URL = "/oversight/transparency/"


# --- suppression ------------------------------------------------------------------------------


def test_small_counts_are_hidden_and_one_hidden_cell_takes_a_second_with_it():
    assert suppress_group({"a": 0, "b": 7, "c": 12}) == {"a": 0, "b": 7, "c": 12}
    assert suppress_group({"a": 3, "b": 7, "c": 12}) == {"a": SUPPRESSED, "b": SUPPRESSED, "c": 12}
    assert suppress_group({"a": 3, "b": 1, "c": 12}) == {"a": SUPPRESSED, "b": SUPPRESSED, "c": 12}
    assert suppress_group({"a": 4, "b": 0}) == {"a": SUPPRESSED, "b": 0}  # a zero reveals nothing


def test_quarters_and_ranges():
    assert Period.quarter(2026, 4) == Period(date(2026, 10, 1), date(2026, 12, 31))
    assert Period.containing(date(2026, 2, 28)).label == "2026 Q1"
    assert Period(date(2026, 1, 5), date(2026, 2, 1)).label == "2026-01-05 to 2026-02-01"
    with pytest.raises(ValueError, match="quarter"):
        Period.quarter(2026, 5)


# --- figures from real data --------------------------------------------------------------------


@pytest.fixture
def decided_requests(open_case, lead, reviewer, second_reviewer, store):
    """Seven requests on one case: five approved, one narrowed, one rejected."""
    made = []
    for number in range(7):
        request = actions.request_submit(
            actor=lead, request=file_request(open_case, lead, subjects=(str(number + 1),), categories=("ip_logs",))
        )
        if number < 5:
            actions.request_decide(actor=second_reviewer, request=request, outcome="approve")
        elif number == 5:
            scope = narrowed(request, categories=["ip_logs"])
            actions.request_decide(
                actor=second_reviewer, request=request, outcome="approve_narrowed", scope=scope, reason="Less."
            )
        else:
            actions.request_decide(actor=second_reviewer, request=request, outcome="reject", reason="Not needed.")
        made.append(request)
    return made


@pytest.mark.django_db(databases=["default", "userdata"])
def test_figures_count_what_happened_and_hide_what_is_small(decided_requests, open_case):
    figures = transparency.publishable(transparency.raw_figures(Period.containing(date.today())))
    assert figures["requests_by_outcome"]["approved"] == 5
    assert figures["requests_by_outcome"]["approved_narrowed"] == SUPPRESSED
    assert figures["requests_by_outcome"]["rejected"] == SUPPRESSED
    assert figures["narrowed_approvals"] == SUPPRESSED
    assert figures["requests_by_category_and_outcome"]["ip_logs"]["approved"] == 5
    assert figures["grants"]["issued"] == 6
    assert figures["time_to_decision"]["count"] == 7 and figures["time_to_decision"]["median_hours"] is not None
    assert figures["cases_opened_by_type"][open_case.case_type] == SUPPRESSED  # one case
    assert figures["queries"]["rows_returned"] == 0


@pytest.mark.django_db(databases=["default", "userdata"])
def test_an_auditor_downloads_signed_json_naming_no_case_subject_or_person(
    decided_requests, open_case, lead, second_reviewer, auditor, client
):
    client.force_login(auditor)
    response = client.get(URL + "report.json")
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    envelope = json.loads(response.content)
    assert transparency.check(envelope, checkpoints.published_public_key())
    assert envelope["report"]["figures"]["requests_by_outcome"]["approved"] == 5
    tampered = json.loads(response.content)
    tampered["report"]["figures"]["requests_by_outcome"]["approved"] = 4
    assert not transparency.check(tampered, checkpoints.published_public_key())
    body = "".join(
        (response.content.decode(), client.get(URL + "report.csv").content.decode(), client.get(URL).content.decode())
    )
    for private in (open_case.reference, open_case.title, lead.username, second_reviewer.username, "Not needed."):
        assert private not in body, private
    formats = list(
        AuditEvent.objects.filter(action=Action.TRANSPARENCY_REPORT, actor_id=auditor.pk).values_list(
            "details__format", flat=True
        )
    )
    assert formats == ["json", "csv", "html"]


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["lead", "reviewer", "senior_reviewer", "admin_user", "superuser", "outsider"])
def test_only_auditors_see_it(request, client, persona):
    client.force_login(request.getfixturevalue(persona))
    for path in ("", "report.json", "report.csv", "outcomes.svg"):
        assert client.get(URL + path).status_code == 404, (persona, path)
    assert not AuditEvent.objects.filter(action=Action.TRANSPARENCY_REPORT).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-05-01", "end": "2026-04-01"}, "end"),
        ({"start": "2026-05-01"}, "end"),
        ({"start": "yesterday", "end": "2026-04-01"}, "start"),
        ({"start": "2010-01-01", "end": "2026-04-01"}, "end"),
        ({"quarter": "2026-Q9"}, "quarter"),
        ({"quarter": "\x00"}, "quarter"),
    ],
)
def test_a_bad_period_gets_a_field_error_never_a_500(client, auditor, query, field):
    client.force_login(auditor)
    response = client.get(URL, query)
    assert response.status_code == 400
    assert field in response.context["form"].errors


@pytest.mark.django_db
def test_a_chart_is_an_svg_image_without_script(client, auditor):
    client.force_login(auditor)
    response = client.get(URL + "outcomes.svg", {"quarter": "2026-Q4"})
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    svg = response.content.decode()
    assert "<svg" in svg and "Requests by outcome, 2026 Q4" in svg
    assert "<script" not in svg
    assert not re.search(r"(href|src)=[\"']?(https?:)?//", svg)  # nothing loaded from elsewhere (no CDN)
    assert client.get(URL + "nothing.svg").status_code == 404
