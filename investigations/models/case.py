from __future__ import annotations

from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from ..markup import render as render_markdown

TITLE_MAX = 200
TEXT_MAX = 10_000


class CaseType(models.TextChoices):
    MISCONDUCT = "misconduct", "Misconduct"
    FRAUD = "fraud", "Fraud"
    SECURITY_INCIDENT = "security_incident", "Security incident"
    LEAK = "leak", "Leak"
    HARASSMENT = "harassment", "Harassment"
    OTHER = "other", "Other"


class CaseStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    OPEN = "open", "Open"
    REJECTED = "rejected", "Rejected"
    ON_HOLD = "on_hold", "On hold"
    CLOSED = "closed", "Closed"


class CasePriority(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# The rules about a case's status live here and nowhere else (actions, access, views and the
# API ask the case through the methods below).
CASE_EDITABLE_STATUSES = (CaseStatus.PENDING_APPROVAL, CaseStatus.REJECTED)  # before legal approved it
ACTIVE_STATUSES = (CaseStatus.PENDING_APPROVAL, CaseStatus.OPEN, CaseStatus.ON_HOLD)  # not over
CLOSABLE_STATUSES = (CaseStatus.OPEN, CaseStatus.ON_HOLD)
TAG_MAX = 40
TAGS_PER_CASE = 12


class CaseReferenceCounter(models.Model):
    """The last reference number handed out per year; locked while a case is opened."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class CaseQuerySet(models.QuerySet["Case"]):
    def open(self) -> CaseQuerySet:
        return self.filter(status=CaseStatus.OPEN)

    def pending_approval(self) -> CaseQuerySet:
        return self.filter(status=CaseStatus.PENDING_APPROVAL)

    def by_priority(self, descending: bool = True) -> CaseQuerySet:
        """Ordered by priority (critical first unless ``descending`` is False), newest first within one."""
        rank = models.Case(
            *(models.When(priority=value, then=models.Value(index)) for index, value in enumerate(CasePriority.values)),
            output_field=models.IntegerField(),
        )
        order = "-priority_rank" if descending else "priority_rank"
        return self.annotate(priority_rank=rank).order_by(order, "-created_at", "-id")

    def search(self, q: str) -> CaseQuerySet:
        """Reference or title contains ``q`` (the lists' search box, pages and API alike)."""
        q = q.strip()
        return self.filter(models.Q(reference__icontains=q) | models.Q(title__icontains=q)) if q else self

    def active(self) -> CaseQuerySet:
        """Cases that are not over: pending approval, open or on hold."""
        return self.filter(status__in=ACTIVE_STATUSES)

    def evidence_purge_due(self, now: datetime, retention: timedelta) -> CaseQuerySet:
        """Closed for ``retention`` at ``now``, not under legal hold, with evidence files not yet purged
        (the queryset form of ``Case.evidence_purge_due``)."""
        return self.filter(
            status=CaseStatus.CLOSED,
            legal_hold=False,
            closed_at__lte=now - retention,
            pk__in=models.Subquery(
                apps.get_model("investigations", "Evidence").objects.filter(purged_at__isnull=True).values("case_id")
            ),
        )


class Case(models.Model):
    reference = models.CharField(max_length=16, unique=True, editable=False)
    title = models.CharField(max_length=TITLE_MAX)
    allegation = models.TextField(max_length=TEXT_MAX)
    case_type = models.CharField(max_length=32, choices=CaseType.choices)
    purpose = models.TextField(
        max_length=TEXT_MAX, help_text="Why the investigation is legitimate and what it needs to establish."
    )
    status = models.CharField(max_length=32, choices=CaseStatus.choices, default=CaseStatus.PENDING_APPROVAL)
    lead = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="led_cases")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(blank=True, max_length=TEXT_MAX)
    closed_at = models.DateTimeField(null=True, blank=True)
    closure_summary = models.TextField(blank=True, max_length=TEXT_MAX)
    priority = models.CharField(max_length=16, choices=CasePriority.choices, default=CasePriority.MEDIUM)
    tags = models.ManyToManyField("Tag", blank=True, related_name="cases")
    # A legal hold keeps the case's evidence past its retention period (set and lifted by an
    # independent legal reviewer, with a reason: ``actions.retention``). The fields describe
    # the hold in force; the ledger keeps every hold and lift.
    legal_hold = models.BooleanField(default=False)
    legal_hold_reason = models.TextField(blank=True, max_length=TEXT_MAX)
    legal_hold_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    legal_hold_at = models.DateTimeField(null=True, blank=True)
    # Lifting a hold takes two legal reviewers: the proposal waiting for a second one (the hold
    # stays in force meanwhile). Cleared when the hold is lifted.
    legal_hold_lift_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    legal_hold_lift_at = models.DateTimeField(null=True, blank=True)
    legal_hold_lift_reason = models.TextField(blank=True, max_length=TEXT_MAX)

    objects = CaseQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("manage_team", "Add and remove team members"),
            ("close_case", "Close the case"),
            ("add_note", "Add notes to the case"),
            ("file_request", "File data-pull requests on the case"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # The case list's order, newest first: a list of many visible cases walks it and stops
            # after a page (access.cases_listed_for).
            models.Index(fields=["-created_at", "-id"], name="case_newest_first"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def is_open(self) -> bool:
        """Open: requests on it may be submitted and decided, and its grants work."""
        return self.status == CaseStatus.OPEN

    @property
    def is_closed(self) -> bool:
        return self.status == CaseStatus.CLOSED

    @property
    def is_on_hold(self) -> bool:
        return self.status == CaseStatus.ON_HOLD

    @property
    def awaits_approval(self) -> bool:
        return self.status == CaseStatus.PENDING_APPROVAL

    @property
    def is_active(self) -> bool:
        """Not over: pending approval, open or on hold."""
        return self.status in ACTIVE_STATUSES

    @property
    def is_editable(self) -> bool:
        """Its description may change only before approval: what legal approved is what the case is."""
        return self.status in CASE_EDITABLE_STATUSES

    @property
    def accepts_requests(self) -> bool:
        """Data-pull requests may be drafted on it (submitting one needs it open)."""
        return self.status in ACTIVE_STATUSES

    @property
    def may_resubmit(self) -> bool:
        return self.status == CaseStatus.REJECTED

    @property
    def may_hold(self) -> bool:
        return self.status == CaseStatus.OPEN

    @property
    def may_resume(self) -> bool:
        return self.is_on_hold

    @property
    def may_close(self) -> bool:
        return self.status in CLOSABLE_STATUSES

    @property
    def accepts_evidence(self) -> bool:
        """New evidence (a document, a version) may be added: until the case closes, as notes.
        (A saved query result needs an open case anyway: its grant works only then.)"""
        return not self.evidence_is_frozen

    @property
    def evidence_is_frozen(self) -> bool:
        """Its evidence no longer changes in any way: no new item or version (a closed case)."""
        return self.status == CaseStatus.CLOSED

    def evidence_purge_due(self, now: datetime, retention: timedelta) -> bool:
        """Its evidence files may be purged at ``now``: closed for ``retention``, and not under legal hold."""
        if not self.is_closed or self.legal_hold or self.closed_at is None:
            return False
        return self.closed_at + retention <= now

    def lift_proposal_lapsed(self, now: datetime | None = None) -> bool:
        """A proposal to lift the legal hold waited longer than ``HOLD_LIFT_PROPOSAL_HOURS``: it
        can no longer be confirmed (the next lift is a new proposal)."""
        if self.legal_hold_lift_at is None:
            return False
        waited = (now or timezone.now()) - self.legal_hold_lift_at
        return waited > timedelta(hours=settings.EVIDENCE["HOLD_LIFT_PROPOSAL_HOURS"])

    @property
    def evidence_may_be_deleted(self) -> bool:
        """Evidence is never deleted while the case is open or may reopen; only once it is frozen."""
        return self.evidence_is_frozen

    @property
    def status_phrase(self) -> str:
        """``"on hold"``, ``"closed"``: for messages that say why something cannot happen."""
        return self.get_status_display().lower()

    def is_on_team(self, user) -> bool:
        return self.members.filter(user=user).exists()


def normalise_tag(name: str) -> str:
    """One spelling per tag: lower case, words joined by hyphens (``"Data Leak "`` → ``data-leak``)."""
    return "-".join(str(name).lower().replace("#", " ").replace(",", " ").split())


class Tag(models.Model):
    """A label on cases, shared by all cases (names are normalised by ``normalise_tag``)."""

    name = models.CharField(max_length=TAG_MAX, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CaseMember(models.Model):
    """A member of the case team. The lead is a member too."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="case_memberships")
    is_lead = models.BooleanField(default=False)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "user"], name="unique_case_member")]

    def __str__(self) -> str:
        return f"{self.user} on {self.case.reference}"


class Involvement(models.TextChoices):
    TEAM = "team", "Team member"
    REQUESTER = "requester", "Filed a request"
    GRANTEE = "grantee", "Grantee"


class CaseMembership(models.Model):
    """One period in which ``user`` was involved in ``case``: on its team, as the filer of a
    request on it, or as a grantee of one of its grants. Rows are never deleted.

    The history behind independent approval (invariant 2): anyone with a row here, open or
    closed, never decides the case or its requests. ``CaseMember`` is the current team only;
    a removal closes the team period here (``left_at``) instead of forgetting it.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    involvement = models.CharField(max_length=16, choices=Involvement.choices)
    grant = models.ForeignKey("investigations.Grant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["joined_at", "id"]
        indexes = [models.Index(fields=["case", "user"]), models.Index(fields=["user", "case"])]
        constraints = [
            # At most one open team period per person and case (``left_at`` closes it).
            models.UniqueConstraint(
                fields=["case", "user"],
                condition=models.Q(involvement="team", left_at__isnull=True),
                name="one_open_team_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.case_id} ({self.involvement})"


NOTE_EDIT_FIELDS = {"text", "version", "edited_at"}


class CaseNote(models.Model):
    """A Markdown note on a case. Its author may edit it; every version is kept (``NoteVersion``)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=TEXT_MAX)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"note {self.pk} on {self.case_id}"

    def save(self, *args, **kwargs):
        # Only an edit (text, version, edited_at together, by ``note_edit``) changes a saved note.
        if not self._state.adding and set(kwargs.get("update_fields") or ()) != NOTE_EDIT_FIELDS:
            raise ValueError("a saved note changes only by an edit (text, version and edited_at)")
        super().save(*args, **kwargs)

    @property
    def html(self) -> str:
        return render_markdown(self.text)


class NoteVersion(models.Model):
    """One version of a note's text, as written (version 1 is the original). Never changed."""

    note = models.ForeignKey(CaseNote, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    text = models.TextField(max_length=TEXT_MAX)
    written_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["note", "number"]
        constraints = [models.UniqueConstraint(fields=["note", "number"], name="unique_note_version")]

    def __str__(self) -> str:
        return f"version {self.number} of note {self.note_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("a note version never changes")
        super().save(*args, **kwargs)

    @property
    def html(self) -> str:
        return render_markdown(self.text)


class CaseUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class CaseGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass
