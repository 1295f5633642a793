"""Forms for data-pull requests, decisions and revocations. Rules live in the actions and scope.py;
these forms only parse input and carry the actions' field errors back to the page."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import User
from userdata.catalogue import CATEGORY_CHOICES

from ..models import DataPullRequest, DecisionOutcome, LegalBasis

SUBJECTS_MAX_CHARS = 200_000  # far above any allowed request; the action states the real limit
SCOPE_FIELDS = ("subjects", "categories", "window_start", "window_end", "duration_hours")


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs, format="%Y-%m-%d")  # what <input type="date"> speaks, whatever the locale


def split_identifiers(text: str) -> list[str]:
    """One identifier per line or comma-separated."""
    return [part.strip() for part in re.split(r"[\n,;]+", text or "") if part.strip()]


class RequestForm(forms.Form):
    subjects = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=SUBJECTS_MAX_CHARS,
        help_text=(
            "Account ids, handles, emails, phone numbers (+...), IP addresses or devices (device:...), one per line "
            "or separated by commas. An IP address means the accounts that logged in from it within the window."
        ),
    )
    categories = forms.MultipleChoiceField(
        choices=CATEGORY_CHOICES, widget=forms.CheckboxSelectMultiple, label="Data categories"
    )
    window_start = forms.DateField(widget=DateInput, label="Window start")
    window_end = forms.DateField(widget=DateInput, label="Window end", help_text="No later than today.")
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=10_000)
    legal_basis = forms.ChoiceField(choices=LegalBasis.choices)
    legal_basis_other = forms.CharField(required=False, max_length=300, label="Legal basis (if other)")
    duration_hours = forms.IntegerField(min_value=1, label="Requested grant duration (hours)")

    def action_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data["subjects"] = split_identifiers(data["subjects"])
        return data

    @classmethod
    def initial_from(cls, request: DataPullRequest) -> dict:
        typed = [entry.get("input", "") for entry in request.subject_inputs] or [str(s) for s in request.subjects]
        return {
            "subjects": "\n".join(typed),
            "categories": request.categories,
            "window_start": request.window_start,
            "window_end": request.window_end,
            "justification": request.justification,
            "legal_basis": request.legal_basis,
            "legal_basis_other": request.legal_basis_other,
            "duration_hours": request.duration_hours,
        }


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(choices=DecisionOutcome.choices, widget=forms.RadioSelect)
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=10_000,
        help_text="Required for everything but a plain approval.",
    )
    subjects = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Approved subjects")
    categories = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Approved categories"
    )
    window_start = forms.DateField(required=False, widget=DateInput, label="Approved window start")
    window_end = forms.DateField(required=False, widget=DateInput, label="Approved window end")
    duration_hours = forms.IntegerField(required=False, min_value=1, label="Approved duration (hours)")
    grantees = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also grant to",
        help_text="The requester always receives the grant; add other members of the case team if needed.",
    )

    def __init__(self, *args, request: DataPullRequest, **kwargs):
        # Choices are the requested values plus anything posted, so that widening is refused by
        # the narrowing rule with its own message rather than a generic "invalid choice".
        super().__init__(*args, **kwargs)
        self.fields["subjects"].choices = self._requested_plus_posted(
            "subjects", [(str(s), str(s)) for s in request.subjects]
        )
        labels = dict(CATEGORY_CHOICES)
        self.fields["categories"].choices = self._requested_plus_posted(
            "categories", [(name, labels.get(name, name)) for name in request.categories]
        )
        self.fields["grantees"].queryset = request.grantee_candidates()
        self.request_obj = request

    def _requested_plus_posted(self, name: str, requested: list[tuple[str, str]]) -> list[tuple[str, str]]:
        posted = self.data.getlist(name) if hasattr(self.data, "getlist") else []
        known = {value for value, _ in requested}
        return requested + [(value, value) for value in dict.fromkeys(posted) if value not in known]

    def clean_subjects(self) -> list[int]:
        values = self.cleaned_data["subjects"]
        try:
            return [int(value) for value in values]
        except ValueError:
            raise ValidationError("Subjects are account ids.") from None

    def narrowed_fields(self) -> dict:
        request = self.request_obj
        data = self.cleaned_data
        return {
            "subjects": tuple(data.get("subjects") or ()),
            "categories": tuple(data.get("categories") or ()),
            "window_start": data.get("window_start") or request.window_start,
            "window_end": data.get("window_end") or request.window_end,
            "duration_hours": data.get("duration_hours") or request.duration_hours,
        }

    def clean(self) -> dict:
        data = super().clean()
        if data.get("outcome") == DecisionOutcome.APPROVE and self._scope_changed():
            # A plain approval grants the requested scope; silently dropping the reviewer's edits
            # would issue more than they meant to approve.
            raise ValidationError(
                "You changed the approved scope: choose “Approve, narrowed” to grant the narrower scope, "
                "or put the requested values back to approve as requested.",
                code="scope_changed",
            )
        return data

    def _scope_changed(self) -> bool:
        """Whether the posted approved-scope fields differ from the request (fields not posted never do)."""
        if not any(name in self.data for name in SCOPE_FIELDS):
            return False
        requested = self.initial_from(self.request_obj)
        data = self.cleaned_data
        return (
            sorted(str(s) for s in data.get("subjects") or ()) != sorted(requested["subjects"])
            or sorted(data.get("categories") or ()) != sorted(requested["categories"])
            or (data.get("window_start") or requested["window_start"]) != requested["window_start"]
            or (data.get("window_end") or requested["window_end"]) != requested["window_end"]
            or (data.get("duration_hours") or requested["duration_hours"]) != requested["duration_hours"]
        )

    @classmethod
    def initial_from(cls, request: DataPullRequest) -> dict:
        return {
            "subjects": [str(s) for s in request.subjects],
            "categories": request.categories,
            "window_start": request.window_start,
            "window_end": request.window_end,
            "duration_hours": request.duration_hours,
        }


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=10_000)


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=10_000, required=False)
