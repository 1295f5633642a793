"""Forms of the oversight pages: acknowledging an alert, the transparency report (alerts filter in ``filters``)."""

from __future__ import annotations

from datetime import date

from django import forms

from ..models.case import TEXT_MAX
from ..transparency import Period


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=TEXT_MAX,
        help_text="What you checked, and why the alert can be closed. Recorded in the audit trail.",
    )


MAX_REPORT_DAYS = 5 * 366


def recent_quarters(today: date, count: int = 8) -> list[tuple[str, str]]:
    year, number = today.year, (today.month - 1) // 3 + 1
    choices = []
    for _ in range(count):
        choices.append((f"{year}-Q{number}", f"{year} Q{number}"))
        year, number = (year - 1, 4) if number == 1 else (year, number - 1)
    return choices


class TransparencyForm(forms.Form):
    """A quarter, or any date range (both dates), for the transparency report."""

    quarter = forms.ChoiceField(required=False, help_text="A calendar quarter (UTC).")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To (inclusive)")

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["quarter"].choices = [("", "Choose a quarter"), *recent_quarters(today)]

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if self.errors:
            return data
        if bool(start) != bool(end):
            self.add_error("end" if start else "start", "Give both dates of the range, or choose a quarter.")
        elif start and end and end < start:
            self.add_error("end", "The range ends before it starts.")
        elif start and end and (end - start).days > MAX_REPORT_DAYS:
            self.add_error("end", "A report covers at most five years.")
        return data

    def period(self) -> Period:
        """The chosen period; the current quarter when nothing (valid) was chosen."""
        data = self.cleaned_data if self.is_valid() else {}
        if data.get("start") and data.get("end"):
            return Period(data["start"], data["end"])
        if data.get("quarter"):
            year, number = data["quarter"].split("-Q")
            return Period.quarter(int(year), int(number))
        return Period.containing(self.today)
