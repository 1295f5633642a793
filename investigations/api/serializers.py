"""What the API shows (read serializers) and what it accepts (write serializers).

Write serializers describe the accepted body for the schema and check its shape; the page's
Django form then validates the values (so page and API accept exactly the same things) and
the action decides. Any other key in a body (``status``, ``lead``, ``reference``,
``requested_by``, ``expires_at``, ``grantees`` on a request, ...) is refused with a field
error: only the server sets those.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from userdata.catalogue import CATEGORY_CHOICES

from .. import access
from ..models import (
    ID_MAX,
    Case,
    CaseMember,
    CaseNote,
    CasePriority,
    CaseType,
    DataPullRequest,
    DataQuery,
    Decision,
    DecisionOutcome,
    Grant,
    GrantStatus,
    LegalBasis,
)
from ..models.case import TAG_MAX, TAGS_PER_CASE, TEXT_MAX, TITLE_MAX

# The largest id the databases store (a signed 64-bit integer): a larger one is a field
# error, never an overflow in the database driver (a 500 before).
# Hours, counts: PostgreSQL's 32-bit integer columns.
SMALL_MAX = 2**31 - 1

SERVER_OWNED = "Not accepted: this field is unknown or set by the server."


class UserRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username"]
        read_only_fields = fields


# --- cases -------------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="user.id", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = CaseMember
        fields = ["id", "username", "is_lead", "added_at"]
        read_only_fields = fields


class NoteSerializer(serializers.ModelSerializer):
    author = UserRefSerializer(read_only=True)
    html = serializers.CharField(read_only=True, help_text="The Markdown text rendered and sanitised.")

    class Meta:
        model = CaseNote
        fields = ["id", "author", "text", "html", "version", "created_at", "edited_at"]
        read_only_fields = fields


class CaseFlagsSerializer(serializers.Serializer):
    """What the caller may do on the case now (the page's buttons)."""

    can_edit = serializers.BooleanField()
    can_resubmit = serializers.BooleanField()
    can_hold = serializers.BooleanField()
    can_resume = serializers.BooleanField()
    can_manage_team = serializers.BooleanField()
    can_close = serializers.BooleanField()
    can_add_note = serializers.BooleanField()
    can_classify = serializers.BooleanField()
    can_approve = serializers.BooleanField()
    can_reject = serializers.BooleanField()


class CaseSerializer(serializers.ModelSerializer):
    lead = UserRefSerializer(read_only=True)
    decided_by = UserRefSerializer(read_only=True, allow_null=True)
    team = MemberSerializer(source="members", many=True, read_only=True)
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "reference",
            "title",
            "allegation",
            "case_type",
            "purpose",
            "status",
            "priority",
            "tags",
            "lead",
            "team",
            "created_at",
            "updated_at",
            "decided_by",
            "decided_at",
            "rejection_reason",
            "closed_at",
            "closure_summary",
        ]
        read_only_fields = fields


class CaseDetailSerializer(CaseSerializer):
    notes = NoteSerializer(many=True, read_only=True)
    flags = serializers.SerializerMethodField()

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "notes", "flags"]
        read_only_fields = fields

    @extend_schema_field(CaseFlagsSerializer)
    def get_flags(self, case: Case) -> dict:
        return self.context["flags"]


class CaseWriteSerializer(serializers.Serializer):
    """Open a case (all required) or edit one before approval (PATCH: any of them)."""

    title = serializers.CharField(max_length=TITLE_MAX)
    allegation = serializers.CharField(max_length=TEXT_MAX)
    case_type = serializers.ChoiceField(choices=CaseType.choices)
    purpose = serializers.CharField(max_length=TEXT_MAX)


class CaseOpenSerializer(CaseWriteSerializer):
    """Open a case: its description, and optionally its priority and first tags."""

    priority = serializers.ChoiceField(choices=CasePriority.choices, required=False)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=TAG_MAX), max_length=TAGS_PER_CASE, required=False
    )


class ClassifySerializer(serializers.Serializer):
    """The case's priority and its whole set of tags (normalised: lower case, hyphens)."""

    priority = serializers.ChoiceField(choices=CasePriority.choices)
    tags = serializers.ListField(child=serializers.CharField(max_length=TAG_MAX), max_length=TAGS_PER_CASE)


class TagFilterSerializer(serializers.Serializer):
    q = serializers.CharField(max_length=TAG_MAX, required=False, help_text="Tags starting with this.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=TEXT_MAX)


class OptionalReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)


class SummarySerializer(serializers.Serializer):
    summary = serializers.CharField(max_length=TEXT_MAX, help_text="Closing revokes every active grant of the case.")
    override_reason = serializers.CharField(
        max_length=TEXT_MAX,
        required=False,
        allow_blank=True,
        help_text="Why the case closes although some tasks are neither done nor cancelled (recorded).",
    )


class NoteWriteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=TEXT_MAX)


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="An active investigator's username.")


# --- data-pull requests ------------------------------------------------------------------


class DecisionSerializer(serializers.ModelSerializer):
    reviewer = UserRefSerializer(read_only=True)
    subjects = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    categories = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Decision
        fields = [
            "id",
            "review_round",
            "reviewer",
            "reviewer_was_senior",
            "outcome",
            "reason",
            "subjects",
            "categories",
            "window_start",
            "window_end",
            "duration_hours",
            "created_at",
        ]
        read_only_fields = fields


class RequestSerializer(serializers.ModelSerializer):
    """A request as the caller may see it.

    To the case team before approval (``subjects_withheld`` true) nothing here depends on the
    user-data store or the protected-subject registry (invariant 10): ``subjects`` are the
    accounts named directly, in the order typed, and ``is_protected`` is null.
    """

    case_reference = serializers.CharField(source="case.reference", read_only=True)
    requested_by = UserRefSerializer(read_only=True)
    subjects = serializers.SerializerMethodField(
        help_text="Account ids. Until the request is approved, the case team sees only the accounts it named "
        "directly (id or handle); the accounts an email, phone, IP or device reaches are for legal reviewers "
        "off the team, as on the request page."
    )
    subjects_withheld = serializers.SerializerMethodField(
        help_text="True when the accounts an email, phone, IP or device reaches, and protection, are withheld "
        "from the caller (the case team before approval), whether or not there are any."
    )
    is_protected = serializers.SerializerMethodField(
        help_text="Whether the protected-subject policy applies; null while withheld from the caller."
    )
    categories = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = DataPullRequest
        fields = [
            "id",
            "case",
            "case_reference",
            "requested_by",
            "status",
            "subjects",
            "subjects_withheld",
            "categories",
            "window_start",
            "window_end",
            "justification",
            "legal_basis",
            "legal_basis_other",
            "duration_hours",
            "is_protected",
            "review_round",
            "created_at",
            "updated_at",
            "submitted_at",
            "decided_at",
        ]
        read_only_fields = fields

    def _viewer(self):
        # Without a user in the context nobody is known to be entitled: withhold (fail closed).
        return self.context.get("user") or getattr(self.context.get("request"), "user", None)

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_subjects(self, obj: DataPullRequest) -> list[int]:
        return access.subjects_shown_to(self._viewer(), obj)

    def get_subjects_withheld(self, obj: DataPullRequest) -> bool:
        return access.withholds_resolution(self._viewer(), obj)

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_is_protected(self, obj: DataPullRequest) -> bool | None:
        return None if access.withholds_resolution(self._viewer(), obj) else obj.is_protected


class RequestFlagsSerializer(serializers.Serializer):
    can_edit = serializers.BooleanField()
    can_submit = serializers.BooleanField()
    can_withdraw = serializers.BooleanField()
    can_decide = serializers.BooleanField()


class RequestDetailSerializer(RequestSerializer):
    decisions = serializers.SerializerMethodField(
        help_text="While the request is withheld from the caller (see subjects_withheld), only the decisions "
        "that ended a round (returned, rejected), with the reviewer's reason."
    )
    grant = serializers.SerializerMethodField(help_text="The grant issued on approval, if the caller may see it.")
    flags = serializers.SerializerMethodField()

    class Meta(RequestSerializer.Meta):
        fields = [*RequestSerializer.Meta.fields, "decisions", "grant", "flags"]
        read_only_fields = fields

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, request: DataPullRequest) -> list[dict]:
        return DecisionSerializer(access.decisions_shown_to(self._viewer(), request), many=True).data

    def get_grant(self, request: DataPullRequest) -> int | None:
        return self.context.get("grant_id")

    @extend_schema_field(RequestFlagsSerializer)
    def get_flags(self, request: DataPullRequest) -> dict:
        return self.context["flags"]


class ReviewItemSerializer(RequestSerializer):
    approval_count = serializers.IntegerField(read_only=True, help_text="Approvals recorded in this review round.")

    class Meta(RequestSerializer.Meta):
        fields = [*RequestSerializer.Meta.fields, "approval_count"]
        read_only_fields = fields


class RequestWriteSerializer(serializers.Serializer):
    """A draft request (POST, all but ``legal_basis_other`` required) or an edit (PATCH, any)."""

    case = serializers.IntegerField(min_value=1, max_value=ID_MAX, help_text="The case to file on (POST only).")
    subjects = serializers.ListField(
        child=serializers.CharField(max_length=320),
        allow_empty=False,
        help_text="Account ids or handles (indirect identifiers are resolved to accounts by an audited lookup).",
    )
    categories = serializers.ListField(child=serializers.ChoiceField(choices=CATEGORY_CHOICES), allow_empty=False)
    window_start = serializers.DateField()
    window_end = serializers.DateField(help_text="Inclusive; no later than today.")
    justification = serializers.CharField(max_length=10_000)
    legal_basis = serializers.ChoiceField(choices=LegalBasis.choices)
    legal_basis_other = serializers.CharField(max_length=300, required=False, allow_blank=True)
    duration_hours = serializers.IntegerField(min_value=1, max_value=SMALL_MAX, help_text="Requested grant duration.")


class RequestUpdateSerializer(RequestWriteSerializer):
    case = None  # a request never moves to another case


API_DECISIONS = ["approve", "reject", "return", DecisionOutcome.APPROVE_NARROWED.value]


class DecisionWriteSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=API_DECISIONS,
        help_text="approve (narrowed when any scope field is given), reject or return; reason required but "
        "for a plain approval.",
    )
    reason = serializers.CharField(max_length=10_000, required=False, allow_blank=True)
    subjects = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=ID_MAX), required=False, allow_empty=False
    )
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=CATEGORY_CHOICES), required=False, allow_empty=False
    )
    window_start = serializers.DateField(required=False)
    window_end = serializers.DateField(required=False)
    duration_hours = serializers.IntegerField(min_value=1, max_value=SMALL_MAX, required=False)
    grantees = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        required=False,
        help_text="User ids of other active case-team members who also receive the grant.",
    )


class DecisionResultSerializer(serializers.Serializer):
    decision = DecisionSerializer()
    request = RequestSerializer()
    grant = serializers.IntegerField(allow_null=True, help_text="The grant, if this approval issued it.")
    still_needed = serializers.CharField(help_text="What approvals the request still needs, in words.")


# --- grants and queries --------------------------------------------------------------------


class GrantSerializer(serializers.ModelSerializer):
    case_reference = serializers.CharField(source="case.reference", read_only=True)
    grantees = UserRefSerializer(many=True, read_only=True)
    revoked_by = UserRefSerializer(read_only=True, allow_null=True)
    subjects = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    categories = serializers.ListField(child=serializers.CharField(), read_only=True)
    status = serializers.SerializerMethodField(
        help_text="active, expired or revoked; expired as soon as expires_at "
        "has passed, whether or not the expiry task has run."
    )

    class Meta:
        model = Grant
        fields = [
            "id",
            "case",
            "case_reference",
            "request",
            "subjects",
            "categories",
            "window_start",
            "window_end",
            "grantees",
            "starts_at",
            "expires_at",
            "status",
            "revoked_at",
            "revoked_by",
            "revoke_reason",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=GrantStatus.choices))
    def get_status(self, grant: Grant) -> str:
        if grant.status == GrantStatus.ACTIVE and grant.expires_at <= timezone.now():
            return GrantStatus.EXPIRED
        return grant.status


class QuerySerializer(serializers.ModelSerializer):
    user = UserRefSerializer(read_only=True)
    subjects = serializers.ListField(child=serializers.IntegerField(), read_only=True)
    retrying = serializers.BooleanField(
        read_only=True,
        help_text="Queued again after a run that did not finish (its worker died or the database was "
        "unavailable); nothing of that run was stored or shown.",
    )

    class Meta:
        model = DataQuery
        fields = [
            "id",
            "grant",
            "user",
            "category",
            "subjects",
            "window_start",
            "window_end",
            "page_size",
            "status",
            "retrying",
            "denial_reason",
            "row_count",
            "truncated",
            "digest",
            "requested_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class QueryDetailSerializer(QuerySerializer):
    results_available = serializers.SerializerMethodField(
        help_text="Whether the caller may read the rows now (grantees only, while retained)."
    )

    class Meta(QuerySerializer.Meta):
        fields = [*QuerySerializer.Meta.fields, "results_available"]
        read_only_fields = fields

    def get_results_available(self, query: DataQuery) -> bool:
        return bool(self.context.get("results_available"))


class QueryWriteSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=CATEGORY_CHOICES)
    subjects = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=ID_MAX),
        required=False,
        help_text="Account ids within the grant; none means all of the grant's.",
    )
    window_start = serializers.DateField(required=False, help_text="Default: the grant's window.")
    window_end = serializers.DateField(required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=500, required=False, default=100)


class ResultsPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Rows in the whole result.")
    page = serializers.IntegerField()
    num_pages = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    truncated = serializers.BooleanField(help_text="The query hit the row cap.")
    digest = serializers.CharField(help_text="SHA-256 of the whole stored result (see docs).")
    columns = serializers.ListField(child=serializers.CharField())
    results = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()))
