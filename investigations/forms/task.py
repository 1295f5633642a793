"""Tasks on a case and the staff's case templates."""

from __future__ import annotations

from django import forms

from accounts.models import User

from ..models import Case, CaseTask, TaskStatus


class TaskForm(forms.ModelForm):
    """Add or edit a task; the assignee is chosen among the case team."""

    class Meta:
        model = CaseTask
        fields = ["title", "description", "assignee", "due_date"]
        widgets = {
            "due_date": forms.DateInput(attrs={"type": "date"}),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, case: Case, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = User.objects.filter(case_memberships__case=case).order_by("username")
        self.fields["assignee"].label_from_instance = lambda user: user.username
        self.fields["assignee"].required = False


class TaskStatusForm(forms.Form):
    status = forms.ChoiceField(choices=TaskStatus.choices)


class CaseTemplateForm(forms.Form):
    tasks = forms.CharField(
        label="Default tasks, one per line, in order",
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        max_length=10_000,
    )

    def clean_tasks(self) -> list[str]:
        return self.cleaned_data["tasks"].splitlines()
