"""Forms for the protected-subject registry page. The actions validate; these only parse."""

from __future__ import annotations

from django import forms

from ..models import ID_MAX, ProtectedCategory, ProtectedSubject


class ProtectedSubjectForm(forms.Form):
    account_id = forms.IntegerField(min_value=1, max_value=ID_MAX, label="Account id")
    category = forms.ChoiceField(choices=ProtectedCategory.choices)
    source = forms.CharField(
        required=False, max_length=300, help_text="Where the classification comes from (press card, public register)."
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class ProtectedChangeForm(forms.Form):
    category = forms.ChoiceField(choices=ProtectedCategory.choices)
    source = forms.CharField(required=False, max_length=300)
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), help_text="Recorded in the audit trail."
    )

    @classmethod
    def initial_from(cls, subject: ProtectedSubject) -> dict:
        return {"category": subject.category, "source": subject.source, "note": subject.note}


class ProtectedRemoveForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the account no longer needs protection. Recorded in the audit trail and sent to oversight.",
    )


class WithdrawProposalForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the proposal is withdrawn or declined. Recorded in the audit trail.",
    )
