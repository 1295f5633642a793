"""Forms, split by sub-domain. Forms only shape input; the actions validate and decide."""

from django import forms
from django.core.exceptions import ValidationError


def apply_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Put an action's field-keyed errors next to the fields (unknown keys go to the top)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)
