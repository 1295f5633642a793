"""The case workspace in Chromium: a case from a template, tasks assigned and done, a note edited,
the timeline filtered by kind and by person (the filters in the URL).

Each step is named (``journey.step``) and leaves a screenshot under test-output/screenshots/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from investigations import actions
from investigations.models import Case, CaseNote
from tests.e2e.test_journeys import label

from .axe import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LEAK_TASKS = ["Confirm the leak", "Scope what was leaked", "Identify internal access", "Interview", "Report"]


@pytest.mark.timeout(600)
def test_case_from_a_template_tasks_and_an_edited_note(journey, live_server, admin_user, lead, member, reviewer):
    page = journey.page
    with journey.step("1 staff keep the default tasks of leak cases"):
        journey.login("admin")
        journey.nav("Case templates")
        page.locator("tr", has_text="Leak").get_by_role("link", name="Edit").click()
        page.get_by_label("Default tasks, one per line, in order").fill("\n".join(LEAK_TASKS))
        page.get_by_role("button", name="Save template").click()
        expect(page.get_by_role("status")).to_contain_text("Template for Leak cases saved")
    journey.logout()

    with journey.step("2 investigator opens a leak case with priority and tags: it starts with the tasks"):
        journey.login("lead")
        journey.nav("New case")
        page.get_by_label(label("Title")).fill("Leak of the board minutes")
        page.get_by_label(label("Allegation")).fill("The March board minutes reached a newspaper.")
        page.get_by_label(label("Type")).select_option("leak")
        page.get_by_label(label("Purpose")).fill("Find which internal account forwarded the minutes.")
        page.get_by_label(label("Priority")).select_option("high")
        page.get_by_label(label("Tags")).fill("Board, Press")
        page.get_by_role("button", name="Open case").click()
        case = Case.objects.get()
        tasks = page.locator("#tasks-heading + table tbody tr")
        expect(tasks).to_have_count(len(LEAK_TASKS))
        expect(tasks.first).to_contain_text("Confirm the leak")
        expect(page.get_by_role("link", name="board", exact=True)).to_be_visible()
    actions.case_add_member(actor=lead, case=case, user=member)
    actions.case_approve(actor=reviewer, case=case)

    with journey.step("3 the lead assigns the interview to a team member"):
        page.reload()
        page.locator("tr", has_text="Interview").get_by_role("link", name="Edit").click()
        page.get_by_label("Assignee").select_option(label="member")
        page.get_by_label("Due date").fill("2020-01-31")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_contain_text("Task saved")
    with journey.step("4 the lead writes a note mentioning the member, then edits it"):
        page.get_by_label("Note").fill("**Board** minutes: ask @member about the *press* contact.")
        page.get_by_role("button", name="Add note").click()
        note = CaseNote.objects.get()
        expect(page.locator(f"#note-{note.pk} strong")).to_have_text("Board")
        page.locator(f"#note-{note.pk}").get_by_role("link", name="Edit").click()
        page.get_by_label("Note").fill("**Board** minutes: @member interviews the press contact on Monday.")
        page.get_by_role("button", name="Save note").click()
        page.locator(f"#note-{note.pk}").get_by_role("link", name="edited").click()
        expect(page.locator("article.note")).to_have_count(2)
        expect(page.locator("#version-1")).to_contain_text("ask @member about the")
    journey.logout()

    with journey.step("5 the member finds the overdue task on the start page and marks it done"):
        journey.login("member")
        card = page.locator("section.card", has=page.locator("#my-tasks"))
        expect(card).to_contain_text("Interview")
        expect(card).to_contain_text("overdue")
        card.get_by_role("link", name="Interview").click()
        row = page.locator("tr", has_text="Interview")
        row.get_by_label("New status").select_option("done")
        row.get_by_role("button", name="Set").click()
        expect(page.locator("tr", has_text="Interview")).to_contain_text("Done")

    with journey.step("5b the member reads the timeline, filtered to tasks, then to the lead's doings"):
        page.goto(f"/cases/{case.pk}/")
        page.get_by_role("link", name="Timeline").click()
        entries = page.locator("ol.timeline li")
        expect(entries.filter(has_text="lead added a note.")).to_have_count(1)
        assert_accessible(page)
        page.get_by_label("Kind").select_option("tasks")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**kind=tasks**")
        expect(entries.filter(has_text="member finished the task “Interview”.")).to_have_count(1)
        assert set(entries.evaluate_all("items => items.map(item => item.dataset.kind)")) == {"tasks"}
        expect(entries.filter(has_text="note")).to_have_count(0)
        page.get_by_label("Kind").select_option("")
        page.get_by_label("Person").select_option("lead")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**person=lead**")
        expect(entries.filter(has_text="lead edited a note")).to_have_count(1)
        expect(entries.filter(has_text="member finished")).to_have_count(0)
        sentences = entries.evaluate_all(
            "items => items.map(item => item.textContent.slice(item.querySelector('time').textContent.length).trim())"
        )
        assert sentences and all(sentence.startswith("lead ") for sentence in sentences), sentences
    journey.logout()

    with journey.step("6 closing with tasks left needs a recorded reason"):
        journey.login("lead")
        page.goto(f"/cases/{case.pk}/close/")
        page.get_by_label("Closure summary").fill("The source was identified.")
        page.get_by_label("I understand").check()
        page.get_by_role("button", name="Close the case").click()
        expect(page.locator(".field-error")).to_contain_text("neither done nor cancelled")
        page.get_by_label("Reason to close with unfinished tasks").fill("The remaining steps moved to HR.")
        page.get_by_label("I understand").check()
        page.get_by_role("button", name="Close the case").click()
        expect(page.get_by_role("status")).to_contain_text("closed")
        case.refresh_from_db()
        assert case.status == "closed"
