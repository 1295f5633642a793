"""The rules about one case live on the model; priority and tags are set by one audited action."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.errors import InvalidTransition
from investigations.models import Case, CaseStatus

from .fixtures import open_case_for
from .test_case_matrix import build_case

pytestmark = pytest.mark.django_db

# status -> (is_editable, accepts_requests, may_resubmit, may_hold, may_resume, may_close, is_active, is_open)
# fmt: off
RULES = {
    CaseStatus.PENDING_APPROVAL: (True,  True,  False, False, False, False, True,  False),
    CaseStatus.REJECTED:         (True,  False, True,  False, False, False, False, False),
    CaseStatus.OPEN:             (False, True,  False, True,  False, True,  True,  True),
    CaseStatus.ON_HOLD:          (False, True,  False, False, True,  True,  True,  False),
    CaseStatus.CLOSED:           (False, False, False, False, False, False, False, False),
}
# fmt: on
NAMES = (
    "is_editable",
    "accepts_requests",
    "may_resubmit",
    "may_hold",
    "may_resume",
    "may_close",
    "is_active",
    "is_open",
)  # fmt: skip


@pytest.mark.parametrize("status", list(RULES))
def test_the_rules_of_each_status(status):
    case = Case(status=status)
    assert tuple(getattr(case, name) for name in NAMES) == RULES[status]


def test_active_queryset_follows_the_model_rule(lead, member, second_reviewer):
    cast = {"lead": lead, "member": member, "second_reviewer": second_reviewer}
    built = {state: build_case(state, cast) for state in ("pending_approval", "rejected", "open", "on_hold", "closed")}
    active = set(Case.objects.active().values_list("pk", flat=True))
    assert active == {case.pk for case in built.values() if case.is_active}


def _events(action: Action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_lead_classifies_with_normalised_tags_and_one_event(lead, member, reviewer):
    case = open_case_for(lead, reviewer, team=[member])
    actions.case_classify(actor=lead, case=case, priority="high", tags=["Data Leak", "#Finance", "data-leak", " "])
    case.refresh_from_db()
    assert case.priority == "high"
    assert sorted(case.tags.values_list("name", flat=True)) == ["data-leak", "finance"]
    [event] = _events(Action.CASE_CLASSIFIED)
    assert event.details["priority"] == {"from": "medium", "to": "high"}
    assert event.details["tags_added"] == ["data-leak", "finance"] and event.details["tags_removed"] == []
    actions.case_classify(actor=lead, case=case, priority="high", tags=["finance", "data-leak"])
    assert len(_events(Action.CASE_CLASSIFIED)) == 1, "no change, no event"


def test_member_may_not_classify_and_the_refusal_is_recorded(lead, member, reviewer):
    case = open_case_for(lead, reviewer, team=[member])
    with pytest.raises(PermissionDenied):
        actions.case_classify(actor=member, case=case, priority="critical", tags=["x"])
    case.refresh_from_db()
    assert case.priority == "medium" and not case.tags.exists()
    assert _events(Action.ACCESS_DENIED)[-1].details["permission"] == "change_case"


@pytest.mark.parametrize(
    "tags, message",
    [
        (["ok", "not/a/tag"], "is not a tag"),
        ([f"t{n}" for n in range(13)], "At most 12 tags"),
        (["x" * 41], "is not a tag"),
    ],
)
def test_bad_tags_are_field_errors_and_change_nothing(lead, reviewer, tags, message):
    case = open_case_for(lead, reviewer)
    with pytest.raises(ValidationError) as error:
        actions.case_classify(actor=lead, case=case, priority="low", tags=tags)
    assert message in " ".join(error.value.message_dict["tags"])
    case.refresh_from_db()
    assert case.priority == "medium" and not case.tags.exists()
    assert not _events(Action.CASE_CLASSIFIED)


def test_a_case_that_is_over_is_not_reclassified(lead, member, second_reviewer):
    cast = {"lead": lead, "member": member, "second_reviewer": second_reviewer}
    with pytest.raises(InvalidTransition):
        actions.case_classify(actor=lead, case=build_case("rejected", cast), priority="low", tags=[])
    with pytest.raises(PermissionDenied):  # closing took change_case from the lead
        actions.case_classify(actor=lead, case=build_case("closed", cast), priority="low", tags=[])


def test_case_opened_with_priority_and_tags(client, lead):
    client.force_login(lead)
    response = client.post(
        reverse("investigations:case_create"),
        {
            "title": "Expense fraud",
            "allegation": "Invoices were split to stay under the limit.",
            "case_type": "fraud",
            "purpose": "Establish who split them.",
            "priority": "critical",
            "tags": "Expenses, Finance Team",
        },
    )
    case = Case.objects.get(title="Expense fraud")
    assert response.status_code == 302
    assert case.priority == "critical"
    assert sorted(case.tags.values_list("name", flat=True)) == ["expenses", "finance-team"]
    assert _events(Action.CASE_OPENED)[-1].details["tags"] == ["expenses", "finance-team"]


def test_case_page_classify_form_shows_field_errors(client, lead, reviewer):
    case = open_case_for(lead, reviewer)
    client.force_login(lead)
    response = client.post(reverse("investigations:case_classify", args=[case.pk]), {"priority": "urgent", "tags": ""})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    response = client.post(reverse("investigations:case_classify", args=[case.pk]), {"priority": "low", "tags": "a/b"})
    assert response.status_code == 400 and "is not a tag" in response.content.decode()
    case.refresh_from_db()
    assert case.priority == "medium"


def test_case_list_filters_and_sorts_by_priority_and_tag(client, lead, reviewer):
    low = open_case_for(lead, reviewer, title="Low one")
    critical = open_case_for(lead, reviewer, title="Critical one")
    medium = open_case_for(lead, reviewer, title="Medium one")
    actions.case_classify(actor=lead, case=low, priority="low", tags=["leak"])
    actions.case_classify(actor=lead, case=critical, priority="critical", tags=["leak", "press"])
    client.force_login(lead)
    url = reverse("investigations:case_list")
    page = client.get(url, {"sort": "priority"}).content.decode()
    assert page.index("Critical one") < page.index("Medium one") < page.index("Low one")
    page = client.get(url, {"tag": "Leak"}).content.decode()
    assert "Critical one" in page and "Low one" in page and medium.title not in page
    page = client.get(url, {"priority": "critical"}).content.decode()
    assert "Critical one" in page and "Low one" not in page


def test_tag_suggestions_come_only_from_visible_cases(client, lead, other_investigator, reviewer):
    case = open_case_for(lead, reviewer)
    actions.case_classify(actor=lead, case=case, priority="high", tags=["secret-project"])
    client.force_login(other_investigator)
    assert "secret-project" not in client.get(reverse("investigations:case_create")).content.decode()
    client.force_login(lead)
    create = client.get(reverse("investigations:case_create")).content.decode()
    assert '<option value="secret-project">' in create


@pytest.mark.parametrize("page", ["case_create", "case_detail", "case_list"])
def test_every_tag_box_is_tied_to_the_suggestions(client, lead, reviewer, page):
    case = open_case_for(lead, reviewer)
    actions.case_classify(actor=lead, case=case, priority="high", tags=["press-contact"])
    client.force_login(lead)
    html = client.get(
        reverse(f"investigations:{page}", args=[case.pk] if page == "case_detail" else [])
    ).content.decode()
    box = re.search(r'<input type="text" name="(tags|tag)"[^>]*>', html).group(0)
    assert 'list="known-tags"' in box, box
    assert '<datalist id="known-tags"><option value="press-contact"></datalist>' in html
    assert "js/tag-suggest.js" in html  # suggests again after each comma
