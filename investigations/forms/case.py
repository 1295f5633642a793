from __future__ import annotations

from django import forms

from accounts.models import User

from ..models import Case, CaseMember
from ..models.case import TEXT_MAX, TITLE_MAX


class CaseForm(forms.ModelForm):
    """Open or edit a case. The reference, status and lead are the server's."""

    class Meta:
        model = Case
        fields = ["title", "allegation", "case_type", "purpose"]
        labels = {"case_type": "Type"}


class CaseSearchForm(forms.Form):
    q = forms.CharField(label="Reference or title", required=False, max_length=TITLE_MAX)


class MemberAddForm(forms.Form):
    """Pick a user by username; the action decides whether they may join."""

    username = forms.CharField(label="Investigator's username", max_length=150)

    def clean_username(self) -> User:
        username = self.cleaned_data["username"].strip()
        user = User.objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"No user is called {username}.")
        return user


class MemberRemoveForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.none(), label="Member")

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = User.objects.filter(pk__in=CaseMember.objects.filter(case=case).values("user"))


class NoteForm(forms.Form):
    text = forms.CharField(label="Note", widget=forms.Textarea, max_length=TEXT_MAX)


class RejectForm(forms.Form):
    reason = forms.CharField(label="Reason for rejection", widget=forms.Textarea, max_length=TEXT_MAX)


class CloseForm(forms.Form):
    summary = forms.CharField(label="Closure summary", widget=forms.Textarea, max_length=TEXT_MAX)
    confirm = forms.BooleanField(
        label="I understand that closing the case revokes all of its active grants at once.", required=True
    )
