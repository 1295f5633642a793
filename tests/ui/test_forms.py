"""Forms, all through one pair of partials: an error summary at the top (focused on load, one link per
field error), required fields marked, every field error at once, help text under its field."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _label(page: str, field: str) -> str:
    return re.search(rf'<label for="id_{field}">(.*?)</label>', page, re.S).group(1)


def test_required_fields_are_marked_and_optional_ones_are_not(lead, client):
    client.force_login(lead)
    page = client.get(reverse("investigations:case_create")).content.decode()
    assert "(required)" in _label(page, "title")
    assert "(required)" in _label(page, "purpose")
    assert "(required)" not in _label(page, "tags")


def test_every_field_error_is_shown_at_once_and_listed_in_the_summary(lead, client):
    client.force_login(lead)
    page = client.post(reverse("investigations:case_create"), {"title": "", "allegation": "", "purpose": ""})
    page = page.content.decode()
    summary = re.search(r'<div class="error-summary".*?</div>', page, re.S).group(0)
    for field in ("title", "allegation", "case_type", "purpose"):
        assert f'id="id_{field}_error"' in page, f"no error shown next to {field}"
        assert f'href="#id_{field}"' in summary, f"the summary does not link to {field}"
    assert "js/error-summary.js" in page  # moves the focus to the summary


def test_help_text_is_under_its_field_and_described_by_it(lead, client):
    client.force_login(lead)
    page = client.get(reverse("accounts:settings")).content.decode()
    select_at = page.index('id="id_time_zone"')
    help_at = page.index('id="id_time_zone_helptext"')
    assert select_at < help_at
    assert 'aria-describedby="id_time_zone_helptext"' in page


def test_the_password_page_uses_the_shared_form_partials(lead, client):
    client.force_login(lead)
    page = client.post(reverse("accounts:password_change"), {"old_password": "wrong"}).content.decode()
    assert "data-error-summary" in page and 'href="#id_old_password"' in page
    assert 'href="#id_new_password1"' in page and 'href="#id_new_password2"' in page
