"""Rules about a scope (subjects, categories, window, duration), shared by forms, API and actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from userdata.catalogue import CATEGORIES


def limits() -> dict:
    return settings.CUSTOS


@dataclass(frozen=True)
class Scope:
    subjects: tuple[int, ...]
    categories: tuple[str, ...]
    window_start: date
    window_end: date
    duration_hours: int

    def as_record(self) -> dict:
        """The scope as the ledger records it (dates in ISO format)."""
        return {
            "subjects": list(self.subjects),
            "categories": list(self.categories),
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "duration_hours": self.duration_hours,
        }


def check_scope(scope: Scope) -> None:
    """Raise a field-keyed ``ValidationError`` listing everything wrong with ``scope``."""
    errors = scope_errors(scope)
    if errors:
        raise ValidationError(errors)


def scope_errors(scope: Scope) -> dict[str, list[str]]:
    """Everything wrong with ``scope``, keyed by field (empty when it is fine)."""
    errors: dict[str, list[str]] = {}
    rules = limits()
    if not scope.subjects:
        errors.setdefault("subjects", []).append("Name at least one subject.")
    if len(scope.subjects) > rules["MAX_SUBJECTS"]:
        errors.setdefault("subjects", []).append(f"At most {rules['MAX_SUBJECTS']} subjects per request.")
    if len(set(scope.subjects)) != len(scope.subjects):
        errors.setdefault("subjects", []).append("A subject is named twice.")
    if not scope.categories:
        errors.setdefault("categories", []).append("Choose at least one data category.")
    unknown = [name for name in scope.categories if name not in CATEGORIES]
    if unknown:
        errors.setdefault("categories", []).append(f"Unknown data category: {', '.join(map(str, unknown))}.")
    if len(set(scope.categories)) != len(scope.categories):
        errors.setdefault("categories", []).append("A category is chosen twice.")
    if scope.window_start > scope.window_end:
        errors.setdefault("window_start", []).append("The window must start before it ends.")
    if scope.window_end > timezone.now().date():
        errors.setdefault("window_end", []).append("The window cannot end after today.")
    if (scope.window_end - scope.window_start).days + 1 > rules["MAX_WINDOW_DAYS"]:
        errors.setdefault("window_end", []).append(f"The window may be at most {rules['MAX_WINDOW_DAYS']} days long.")
    if not 1 <= scope.duration_hours <= rules["MAX_GRANT_HOURS"]:
        errors.setdefault("duration_hours", []).append(
            f"The grant duration must be between 1 and {rules['MAX_GRANT_HOURS']} hours."
        )
    return errors


def check_narrowing(requested: Scope, approved: Scope) -> None:
    """Approval may remove and shorten, never add or lengthen."""
    errors: dict[str, str] = {}
    extra_subjects = sorted(set(approved.subjects) - set(requested.subjects))
    if extra_subjects:
        errors["subjects"] = f"Not in the request: {', '.join(map(str, extra_subjects))}. Approval cannot add subjects."
    extra_categories = sorted(set(approved.categories) - set(requested.categories))
    if extra_categories:
        errors["categories"] = f"Not in the request: {', '.join(extra_categories)}. Approval cannot add categories."
    if approved.window_start < requested.window_start:
        errors["window_start"] = "The approved window cannot start before the requested one."
    if approved.window_end > requested.window_end:
        errors["window_end"] = "The approved window cannot end after the requested one."
    if approved.duration_hours > requested.duration_hours:
        errors["duration_hours"] = "The approved duration cannot be longer than the requested one."
    if not approved.subjects:
        errors.setdefault("subjects", "Keep at least one subject, or reject the request.")
    if not approved.categories:
        errors.setdefault("categories", "Keep at least one category, or reject the request.")
    if approved.window_start > approved.window_end:
        errors.setdefault("window_start", "The window must start before it ends.")
    if approved.duration_hours < 1:
        errors.setdefault("duration_hours", "The duration must be at least one hour.")
    if errors:
        raise ValidationError(errors)
