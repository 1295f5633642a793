from __future__ import annotations

from django import forms

from accounts.models import User

from ..models import Case, CaseMember, CasePriority
from ..models.case import TAG_MAX, TAGS_PER_CASE, TEXT_MAX, TITLE_MAX

TAGS_HELP = "Separated by commas; written in lower case with hyphens (“Data leak” becomes data-leak)."
# The browser suggests the tags already on cases the reader sees (templates/investigations/_tag_options.html).
TAGS_WIDGET = forms.TextInput(attrs={"list": "known-tags"})


def split_tags(value: str) -> list[str]:
    """The tags typed into one text box, separated by commas."""
    return [part for part in (value or "").split(",") if part.strip()]


class CaseForm(forms.ModelForm):
    """Open or edit a case. The reference, status and lead are the server's."""

    class Meta:
        model = Case
        fields = ["title", "allegation", "case_type", "purpose"]
        labels = {"case_type": "Type"}


class CaseOpenForm(CaseForm):
    """Opening a case also sets its priority and first tags (the action normalises the tags)."""

    priority = forms.TypedChoiceField(
        choices=CasePriority.choices, initial=CasePriority.MEDIUM, required=False, empty_value=CasePriority.MEDIUM
    )
    tags = forms.CharField(
        required=False, max_length=(TAG_MAX + 2) * TAGS_PER_CASE, help_text=TAGS_HELP, widget=TAGS_WIDGET
    )

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data["tags"])


class ClassifyForm(forms.Form):
    """Priority and tags of a case."""

    priority = forms.ChoiceField(choices=CasePriority.choices)
    tags = forms.CharField(
        required=False, max_length=(TAG_MAX + 2) * TAGS_PER_CASE, help_text=TAGS_HELP, widget=TAGS_WIDGET
    )

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data["tags"])


CASE_SORTS = {"newest": "Newest first", "priority": "Priority, highest first"}


class CaseSearchForm(forms.Form):
    q = forms.CharField(label="Reference or title", required=False, max_length=TITLE_MAX)
    priority = forms.ChoiceField(choices=[("", "Any priority"), *CasePriority.choices], required=False)
    tag = forms.CharField(required=False, max_length=TAG_MAX)
    sort = forms.ChoiceField(choices=list(CASE_SORTS.items()), required=False)


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
    text = forms.CharField(
        label="Note",
        widget=forms.Textarea,
        max_length=TEXT_MAX,
        help_text="Markdown. Mention a team member as @username to tell them.",
    )


class RejectForm(forms.Form):
    reason = forms.CharField(label="Reason for rejection", widget=forms.Textarea, max_length=TEXT_MAX)


class LegalHoldForm(forms.Form):
    """Place or lift a legal hold; ``action`` says which the page offered, so a second submit
    after the state changed is a conflict, not the opposite of what was meant."""

    action = forms.ChoiceField(choices=[("place", "Place"), ("lift", "Lift")], widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=TEXT_MAX,
        help_text="Recorded in the ledger with the hold.",
    )


class CloseForm(forms.Form):
    summary = forms.CharField(label="Closure summary", widget=forms.Textarea, max_length=TEXT_MAX)
    override_reason = forms.CharField(
        label="Reason to close with unfinished tasks",
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=TEXT_MAX,
        required=False,
        help_text="Only needed when some tasks are neither done nor cancelled; it is recorded.",
    )
    confirm = forms.BooleanField(
        label="I understand that closing the case revokes all of its active grants at once.", required=True
    )
