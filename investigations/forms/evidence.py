"""Evidence forms: upload a document (or a new version), save a query's result, release a copy.

They only shape input; the actions check the file (size, sniffed type, name) and decide.
"""

from __future__ import annotations

from django import forms
from django.conf import settings

from ..models import ID_MAX, EvidenceFormat
from ..models.case import TEXT_MAX, TITLE_MAX


def _limit_text() -> str:
    megabytes = settings.EVIDENCE["MAX_BYTES"] / (1024 * 1024)
    return f"{megabytes:g} MB" if megabytes >= 1 else f"{settings.EVIDENCE['MAX_BYTES']:,} bytes"


class EvidenceUploadForm(forms.Form):
    file = forms.FileField(label="File")
    title = forms.CharField(
        label="Title", max_length=TITLE_MAX, required=False, help_text="What it is; the file name if left empty."
    )
    description = forms.CharField(
        label="Description", widget=forms.Textarea(attrs={"rows": 3}), max_length=TEXT_MAX, required=False
    )
    supersedes = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1, max_value=ID_MAX)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        types = ", ".join(settings.EVIDENCE["ALLOWED_TYPES"])
        self.fields["file"].help_text = (
            f"Up to {_limit_text()}. Accepted: {types} (told by the file's contents, not its name). "
            "Custos computes its SHA-256 as it arrives."
        )


class SaveResultForm(forms.Form):
    formats = forms.MultipleChoiceField(
        label="Formats",
        choices=EvidenceFormat.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[EvidenceFormat.CSV, EvidenceFormat.JSON],
        help_text="JSON keeps the rows exactly, so their digest can be recomputed from the file.",
    )
    title = forms.CharField(label="Title", max_length=TITLE_MAX, required=False)


class ReleaseForm(forms.Form):
    recipient = forms.CharField(label="Released to", max_length=TITLE_MAX, help_text="Who receives the copy.")
    reason = forms.CharField(label="Why it leaves the case", widget=forms.Textarea, max_length=TEXT_MAX)
