"""The query form. Its choices show the grant's scope; scope itself is decided by the action.

A known category outside the grant, a subject outside it or a window beyond it is not a form
error: it is an authorisation failure, which the action records as a refused query.
"""

from __future__ import annotations

from django import forms

from userdata.catalogue import CATEGORIES

from ..actions.query import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from ..models import Grant
from .request import DateInput


class CatalogueChoiceField(forms.ChoiceField):
    def valid_value(self, value) -> bool:
        return value in CATEGORIES


class SubjectsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def valid_value(self, value) -> bool:
        return str(value).isdigit() and len(str(value)) < 19

    def clean(self, value) -> list[int]:
        return [int(subject) for subject in super().clean(value)]


class QueryForm(forms.Form):
    category = CatalogueChoiceField(label="Data category")
    subjects = SubjectsField(label="Subjects", required=False, help_text="None ticked means all of the grant's.")
    # ISO dates: <input type="date"> cannot show a value in the locale's format (it renders empty).
    window_start = forms.DateField(label="From", required=False, widget=DateInput)
    window_end = forms.DateField(label="Until (inclusive)", required=False, widget=DateInput)
    page_size = forms.IntegerField(
        label="Rows per page", min_value=1, max_value=MAX_PAGE_SIZE, initial=DEFAULT_PAGE_SIZE
    )

    def __init__(self, *args, grant: Grant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [
            (name, CATEGORIES[name].label) for name in grant.categories if name in CATEGORIES
        ]
        current = [
            CATEGORIES[name].label for name in grant.categories if name in CATEGORIES and not CATEGORIES[name].windowed
        ]
        if current:  # the catalogue's word: a current state (the profile) is not limited by the window
            self.fields["category"].help_text = f"{', '.join(current)}: the account as it is now, whatever the window."
        self.fields["subjects"].choices = [(str(subject), f"account {subject}") for subject in grant.subjects]
        for name, day in (("window_start", grant.window_start), ("window_end", grant.window_end)):
            self.fields[name].initial = day
            self.fields[name].widget.attrs.update(min=grant.window_start.isoformat(), max=grant.window_end.isoformat())
