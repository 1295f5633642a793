"""API views: objects from ``access.py``, validation by the pages' forms, changes by ``actions``.

No permission logic and no state change lives here. The order of checks follows the pages:
find the object (404), check the caller's right (403, recorded where the page records it),
check the state (409), validate the body (400), then, on the endpoints marked
``@api_step_up_required``, the recent second-factor check (403 ``step_up_required``), then call
the action. Only a caller who could act is ever asked to step up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.fields import empty
from rest_framework.metadata import SimpleMetadata
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from accounts.http import SignedInAPIRequest
from accounts.models import User
from accounts.stepup import api_step_up_required

from .. import access, actions
from ..actions.query import results_problem
from ..errors import InvalidTransition, ResultsUnavailable
from ..filters import ApiCaseFilter, ApiRequestFilter
from ..forms.case import CaseForm, CaseOpenForm, CloseForm, MemberAddForm, NoteForm, RejectForm
from ..forms.query import QueryForm
from ..forms.request import DecisionForm, OptionalReasonForm, ReasonForm, RequestForm
from ..models import Case, DataPullRequest, DataQuery, DecisionOutcome, Grant, RequestStatus
from ..models.case import normalise_tag
from ..scope import Scope
from . import serializers
from .errors import NON_FIELD, form_errors
from .pagination import KeysetPagination
from .throttles import QuerySubmitThrottle

# --- helpers -------------------------------------------------------------------------------


def _body(request: SignedInAPIRequest, serializer_class: type[Serializer], *, partial: bool = False) -> dict:
    """The body checked for shape; any key the serializer does not accept is refused, not ignored."""
    data = request.data
    if not isinstance(data, dict):
        raise ValidationError({NON_FIELD: ["Send a JSON object."]})
    allowed = set(serializer_class().fields)
    unknown = sorted(str(name) for name in data if name not in allowed)
    if unknown:
        raise ValidationError({name: [serializers.SERVER_OWNED] for name in unknown})
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _query_params(request: SignedInAPIRequest, serializer_class: type[Serializer]) -> dict:
    known = set(serializer_class().fields)
    serializer = serializer_class(data={k: v for k, v in request.query_params.items() if k in known})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _valid(form):
    """The page's form, on the API's values: the same rules for both."""
    if not form.is_valid():
        raise ValidationError(form_errors(form))
    return form


def _conflict_unless(allowed: bool, message: str) -> None:
    if not allowed:
        raise InvalidTransition(message)


ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class DescriptionMetadata(SimpleMetadata):
    """``OPTIONS`` names the view and its media types, never its actions' fields.

    Those would need DRF's ``get_object`` (a 500 here before); ``/api/schema/`` has them.
    """

    def determine_actions(self, request, view) -> dict:
        return {}


class ChokepointViewSet(viewsets.GenericViewSet):
    """Objects come from ``access.py`` only: there is deliberately no generic ``get_object``."""

    metadata_class = DescriptionMetadata  # type: ignore[assignment]  # the stubs say an instance; DRF takes a class
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"  # anything that is not a visible id is a 404 from the chokepoint

    def get_object(self):  # pragma: no cover - a guard against using DRF's unchecked lookup
        raise NotImplementedError("use the access.py chokepoints")


# --- cases -------------------------------------------------------------------------------


def _filtered(filterset_class, request: SignedInAPIRequest, visible: QuerySet) -> QuerySet:
    """``visible`` (from an ``access`` chokepoint) narrowed by the list's filters (django-filter,
    as the pages); a bad value is a field error."""
    filters = filterset_class(request.query_params, queryset=visible)
    if not filters.is_valid():
        raise ValidationError(filters.errors)
    return filters.qs


def _case_rows(cases: QuerySet) -> QuerySet:
    """What a case in the list shows (its page's rows, read by id: ``pagination``)."""
    return cases.select_related("lead", "decided_by").prefetch_related("members__user", "tags")


def _case_response(user: User, case: Case, code: int = status.HTTP_200_OK) -> Response:
    case = access.get_case_for(user, case.pk)
    context = {"flags": access.case_flags(user, case)}
    return Response(serializers.CaseDetailSerializer(case, context=context).data, status=code)


CASE_ACTION: dict[str, Any] = {"request": None, "responses": serializers.CaseDetailSerializer}


@extend_schema_view(
    list=extend_schema(summary="Cases visible to the caller"),
    create=extend_schema(
        request=serializers.CaseOpenSerializer, responses={201: serializers.CaseDetailSerializer}, summary="Open a case"
    ),
    retrieve=extend_schema(responses=serializers.CaseDetailSerializer),
    partial_update=extend_schema(
        request=serializers.CaseWriteSerializer,
        responses=serializers.CaseDetailSerializer,
        summary="Edit a case before approval",
    ),
)
class CaseViewSet(ChokepointViewSet):
    queryset = Case.objects.none()  # for the schema; lists come from cases_visible_to
    serializer_class = serializers.CaseSerializer
    filter_backends = [DjangoFilterBackend]  # the schema's list parameters; list() applies the set itself
    filterset_class = ApiCaseFilter
    pagination_class = KeysetPagination

    def list(self, request: SignedInAPIRequest) -> Response:
        visible = access.cases_listed_for(request.user).order_by("-created_at", "-id")
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(_filtered(ApiCaseFilter, request, visible), request, fetch=_case_rows)
        return paginator.get_paginated_response(serializers.CaseSerializer(page, many=True).data)

    def create(self, request: SignedInAPIRequest) -> Response:
        if not request.user.is_investigator:
            raise PermissionDenied("Only investigators open cases.")
        body = _body(request, serializers.CaseOpenSerializer)
        tags = body.pop("tags", [])
        form = _valid(CaseOpenForm(body))
        case = actions.case_open(actor=request.user, **(form.cleaned_data | {"tags": tags}))
        return _case_response(request.user, case, status.HTTP_201_CREATED)

    def retrieve(self, request: SignedInAPIRequest, id: str) -> Response:
        return _case_response(request.user, access.get_case_for(request.user, id))

    def partial_update(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id, perm="change_case")
        _conflict_unless(access.case_flags(request.user, case)["can_edit"], "An approved case cannot be edited.")
        changes = _body(request, serializers.CaseWriteSerializer, partial=True)
        current = Case.objects.get(pk=case.pk)
        data = {name: getattr(current, name) for name in CaseForm._meta.fields} | changes  # type: ignore[misc, union-attr]
        form = _valid(CaseForm(data, instance=current))
        actions.case_update(actor=request.user, case=case, **form.cleaned_data)
        return _case_response(request.user, case)

    def _transition(
        self, request: SignedInAPIRequest, id: str, change: Callable[..., Case], find=access.get_case_for
    ) -> Response:
        case = find(request.user, id)
        change(actor=request.user, case=case)
        return _case_response(request.user, case)

    @extend_schema(**CASE_ACTION, summary="Legal: approve a pending case")
    @action(detail=True, methods=["post"])
    @api_step_up_required
    def approve(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_to_decide(request.user, id, "approve")
        _conflict_unless(case.awaits_approval, f"The case is {case.status_phrase}, not pending approval.")
        request.step_up.demand()
        actions.case_approve(actor=request.user, case=case)
        return _case_response(request.user, case)

    @extend_schema(
        request=serializers.ReasonSerializer,
        responses=serializers.CaseDetailSerializer,
        summary="Legal: reject a pending case",
    )
    @action(detail=True, methods=["post"])
    @api_step_up_required
    def reject(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_to_decide(request.user, id, "reject")
        _conflict_unless(case.awaits_approval, "The case is not pending approval.")
        form = _valid(RejectForm(_body(request, serializers.ReasonSerializer)))
        request.step_up.demand()
        actions.case_reject(actor=request.user, case=case, reason=form.cleaned_data["reason"])
        return _case_response(request.user, case)

    @extend_schema(**CASE_ACTION, summary="Lead: send a rejected case back to legal")
    @action(detail=True, methods=["post"])
    def resubmit(self, request: SignedInAPIRequest, id: str) -> Response:
        return self._transition(request, id, actions.case_resubmit)

    @extend_schema(**CASE_ACTION, summary="Lead: put an open case on hold (its grants stop working)")
    @action(detail=True, methods=["post"])
    def hold(self, request: SignedInAPIRequest, id: str) -> Response:
        return self._transition(request, id, actions.case_hold)

    @extend_schema(**CASE_ACTION, summary="Lead: resume a case on hold")
    @action(detail=True, methods=["post"])
    def resume(self, request: SignedInAPIRequest, id: str) -> Response:
        return self._transition(request, id, actions.case_resume)

    @extend_schema(
        request=serializers.SummarySerializer,
        responses=serializers.CaseDetailSerializer,
        summary="Lead: close the case",
    )
    @action(detail=True, methods=["post"])
    def close(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id, perm="close_case")
        _conflict_unless(case.may_close, f"The case is {case.status_phrase}.")
        body = _body(request, serializers.SummarySerializer)
        # The page's confirmation box is the browser's way of asking; an API call to close is the intent.
        form = _valid(CloseForm({**body, "confirm": True}))
        actions.case_close(
            actor=request.user,
            case=case,
            summary=form.cleaned_data["summary"],
            override_reason=form.cleaned_data["override_reason"],
        )
        return _case_response(request.user, case)

    @extend_schema(
        request=serializers.ClassifySerializer,
        responses=serializers.CaseDetailSerializer,
        summary="Lead: set the priority and tags",
    )
    @action(detail=True, methods=["post"])
    def classification(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id, perm="change_case")
        _conflict_unless(case.is_active, f"The case is {case.status_phrase}; its priority and tags no longer change.")
        actions.case_classify(actor=request.user, case=case, **_body(request, serializers.ClassifySerializer))
        return _case_response(request.user, case)

    @extend_schema(
        request=serializers.NoteWriteSerializer, responses={201: serializers.NoteSerializer}, summary="Team: add a note"
    )
    @action(detail=True, methods=["post"])
    def notes(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id, perm="add_note")
        form = _valid(NoteForm(_body(request, serializers.NoteWriteSerializer)))
        note = actions.case_add_note(actor=request.user, case=case, text=form.cleaned_data["text"])
        return Response(serializers.NoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=serializers.MemberAddSerializer,
        responses={201: serializers.CaseDetailSerializer},
        summary="Lead: add a team member",
    )
    @action(detail=True, methods=["post"])
    def members(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id, perm="manage_team")
        form = _valid(MemberAddForm(_body(request, serializers.MemberAddSerializer)))
        try:
            actions.case_add_member(actor=request.user, case=case, user=form.cleaned_data["username"])
        except DjangoValidationError as error:  # the page shows these next to the username too
            raise ValidationError({"username": error.messages}) from error
        return _case_response(request.user, case, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("user_id", OpenApiTypes.INT, OpenApiParameter.PATH)],
        request=None,
        responses={204: OpenApiResponse(description="Removed; their access ended at once.")},
        summary="Lead: remove a team member",
    )
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>[^/]+)")
    def remove_member(self, request: SignedInAPIRequest, id: str, user_id: str) -> Response:
        case = access.get_case_for(request.user, id, perm="manage_team")
        membership = case.members.select_related("user").filter(user_id=user_id if user_id.isdigit() else 0).first()
        if membership is None:
            raise NotFound()
        actions.case_remove_member(actor=request.user, case=case, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- data-pull requests ------------------------------------------------------------------


def _request_response(user: User, data_request: DataPullRequest, code: int = status.HTTP_200_OK) -> Response:
    data_request = access.get_request_for(user, data_request.pk)
    context = {
        "user": user,
        "flags": access.request_flags(user, data_request),
        "grant_id": access.grants_visible_to(user).filter(request=data_request).values_list("pk", flat=True).first(),
    }
    return Response(serializers.RequestDetailSerializer(data_request, context=context).data, status=code)


def _request_form_data(values: dict) -> dict:
    """API values in the shape the page's ``RequestForm`` reads (subjects one per line)."""
    data = dict(values)
    if isinstance(data.get("subjects"), list):
        data["subjects"] = "\n".join(data["subjects"])
    return data


@extend_schema_view(
    list=extend_schema(summary="Requests visible to the caller"),
    create=extend_schema(
        request=serializers.RequestWriteSerializer,
        responses={201: serializers.RequestDetailSerializer},
        summary="File a draft request",
    ),
    retrieve=extend_schema(responses=serializers.RequestDetailSerializer),
    partial_update=extend_schema(
        request=serializers.RequestUpdateSerializer,
        responses=serializers.RequestDetailSerializer,
        summary="Requester: edit a draft or returned request",
    ),
)
class RequestViewSet(ChokepointViewSet):
    queryset = DataPullRequest.objects.none()
    serializer_class = serializers.RequestSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ApiRequestFilter
    pagination_class = KeysetPagination

    def list(self, request: SignedInAPIRequest) -> Response:
        visible = access.requests_visible_to(request.user).select_related("case", "requested_by")
        # The page's rows are read through ``visible`` itself: it carries the viewer's flags.
        page = self.paginate_queryset(_filtered(ApiRequestFilter, request, visible.order_by("-created_at", "-id")))
        return self.get_paginated_response(
            serializers.RequestSerializer(page, many=True, context={"user": request.user}).data
        )

    def create(self, request: SignedInAPIRequest) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        try:  # the case first: who may file on it is decided before the body is looked at
            case_id = serializers.RequestWriteSerializer().fields["case"].run_validation(data.get("case", empty))
        except ValidationError as error:
            raise ValidationError({"case": error.detail}) from error
        case = access.get_case_for(request.user, case_id, perm="file_request")
        values = _body(request, serializers.RequestWriteSerializer)
        values.pop("case")
        form = _valid(RequestForm(_request_form_data(values)))
        data_request = actions.request_create(actor=request.user, case=case, **form.action_kwargs())
        return _request_response(request.user, data_request, status.HTTP_201_CREATED)

    def retrieve(self, request: SignedInAPIRequest, id: str) -> Response:
        return _request_response(request.user, access.get_request_for(request.user, id))

    def partial_update(self, request: SignedInAPIRequest, id: str) -> Response:
        data_request = access.get_request_for(request.user, id, perm="edit")
        _conflict_unless(
            data_request.is_editable,
            f"The request is {data_request.get_status_display().lower()}; it can no longer be edited.",
        )
        changes = _body(request, serializers.RequestUpdateSerializer, partial=True)
        data = RequestForm.initial_from(data_request) | _request_form_data(changes)
        form = _valid(RequestForm(data))
        actions.request_update(actor=request.user, request=data_request, **form.action_kwargs())
        return _request_response(request.user, data_request)

    @extend_schema(request=None, responses=serializers.RequestDetailSerializer, summary="Requester: send to legal")
    @action(detail=True, methods=["post"])
    def submit(self, request: SignedInAPIRequest, id: str) -> Response:
        data_request = access.get_request_for(request.user, id, perm="submit")
        actions.request_submit(actor=request.user, request=data_request)
        return _request_response(request.user, data_request)

    @extend_schema(
        request=serializers.OptionalReasonSerializer,
        responses=serializers.RequestDetailSerializer,
        summary="Withdraw a draft or returned",
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request: SignedInAPIRequest, id: str) -> Response:
        data_request = access.get_request_for(request.user, id, perm="withdraw")
        _conflict_unless(
            data_request.is_editable,
            f"The request is {data_request.get_status_display().lower()}; it cannot be withdrawn.",
        )
        form = _valid(OptionalReasonForm(_body(request, serializers.OptionalReasonSerializer)))
        actions.request_withdraw(actor=request.user, request=data_request, reason=form.cleaned_data["reason"])
        return _request_response(request.user, data_request)

    @extend_schema(
        request=serializers.DecisionWriteSerializer,
        responses={201: serializers.DecisionResultSerializer},
        summary="Legal: approve (optionally narrowed), reject or return",
    )
    @action(detail=True, methods=["post"])
    @api_step_up_required
    def decisions(self, request: SignedInAPIRequest, id: str) -> Response:
        data_request = access.get_request_for(request.user, id, perm="decide")
        _conflict_unless(
            data_request.status == RequestStatus.SUBMITTED,
            f"The request is {data_request.get_status_display().lower()}; it cannot be decided.",
        )
        form = _valid(_decision_form(data_request, _body(request, serializers.DecisionWriteSerializer)))
        request.step_up.demand()
        data = form.cleaned_data
        narrowed = data["outcome"] == DecisionOutcome.APPROVE_NARROWED
        decision = actions.request_decide(
            actor=request.user,
            request=data_request,
            outcome=data["outcome"],
            reason=data["reason"],
            scope=Scope(**form.narrowed_fields()) if narrowed else None,
            grantees=list(data["grantees"]),
        )
        # One statement for the request as the decision left it (its case and requester joined;
        # the viewer's annotations stay), one for its grant.
        data_request.refresh_from_db(from_queryset=DataPullRequest.objects.select_related("case", "requested_by"))
        body = {
            "decision": serializers.DecisionSerializer(decision).data,
            "request": serializers.RequestSerializer(data_request, context={"user": request.user}).data,
            "grant": access.grant_id_of_request(request.user, data_request),
            "still_needed": actions.approvals_still_needed(data_request)
            if data_request.status == RequestStatus.SUBMITTED
            else "",
        }
        return Response(body, status=status.HTTP_201_CREATED)


SCOPE_FIELDS = ("subjects", "categories", "window_start", "window_end", "duration_hours")


def _decision_form(data_request: DataPullRequest, values: dict) -> DecisionForm:
    """The page's ``DecisionForm`` on the API's values; scope fields not given keep the request's."""
    outcome = values["decision"]
    narrowing = [name for name in SCOPE_FIELDS if name in values]
    if narrowing and outcome in (DecisionOutcome.REJECT, DecisionOutcome.RETURN):
        raise ValidationError({name: ["Only an approval takes a scope."] for name in narrowing})
    if outcome == DecisionOutcome.APPROVE and narrowing:
        outcome = DecisionOutcome.APPROVE_NARROWED
    scope = DecisionForm.initial_from(data_request) | {name: values[name] for name in narrowing}
    data = QueryDict(mutable=True)
    data["outcome"] = outcome
    data["reason"] = values.get("reason", "")
    data.setlist("subjects", [str(subject) for subject in scope["subjects"]])
    data.setlist("categories", list(scope["categories"]))
    for name in ("window_start", "window_end"):
        data[name] = scope[name].isoformat()
    data["duration_hours"] = str(scope["duration_hours"])
    data.setlist("grantees", [str(pk) for pk in values.get("grantees", [])])
    return DecisionForm(data, request=data_request)


class ReviewQueueView(APIView):
    @extend_schema(responses=serializers.ReviewItemSerializer(many=True), summary="Legal: the caller's review queue")
    def get(self, request: SignedInAPIRequest) -> Response:
        if not request.user.is_reviewer:
            raise PermissionDenied("The review queue is for legal reviewers.")
        queue = access.review_queue_for(request.user)[:200]
        return Response(serializers.ReviewItemSerializer(queue, many=True).data)


# --- grants and queries --------------------------------------------------------------------


def _grant_rows(grants: QuerySet) -> QuerySet:
    return grants.select_related("case", "revoked_by").prefetch_related("grantees")


@extend_schema_view(
    list=extend_schema(summary="Grants visible to the caller"),
    retrieve=extend_schema(summary="A grant: frozen scope, grantees, expiry, status"),
)
class GrantViewSet(ChokepointViewSet):
    queryset = Grant.objects.none()
    serializer_class = serializers.GrantSerializer
    pagination_class = KeysetPagination

    def list(self, request: SignedInAPIRequest) -> Response:
        grants = access.grants_listed_for(request.user).order_by("-starts_at", "-id")
        paginator = KeysetPagination()
        page = paginator.paginate_queryset(grants, request, fetch=_grant_rows)
        return paginator.get_paginated_response(serializers.GrantSerializer(page, many=True).data)

    def retrieve(self, request: SignedInAPIRequest, id: str) -> Response:
        return Response(serializers.GrantSerializer(access.get_grant_for(request.user, id)).data)

    @extend_schema(
        request=serializers.ReasonSerializer, responses=serializers.GrantSerializer, summary="Revoke now, with a reason"
    )
    @action(detail=True, methods=["post"])
    @api_step_up_required
    def revoke(self, request: SignedInAPIRequest, id: str) -> Response:
        grant = access.get_grant_for(request.user, id, perm="revoke")
        form = _valid(ReasonForm(_body(request, serializers.ReasonSerializer)))
        request.step_up.demand()
        grant = actions.grant_revoke(actor=request.user, grant=grant, reason=form.cleaned_data["reason"])
        return Response(serializers.GrantSerializer(access.get_grant_for(request.user, grant.pk)).data)

    @extend_schema(
        request=serializers.QueryWriteSerializer,
        responses={202: serializers.QuerySerializer},
        summary="Grantee: submit a query (202; a refused attempt is 403 with a code, and recorded)",
    )
    @action(detail=True, methods=["post"], throttle_classes=[QuerySubmitThrottle])
    def queries(self, request: SignedInAPIRequest, id: str) -> Response:
        grant = access.get_grant_for_query(request.user, id)
        values = _body(request, serializers.QueryWriteSerializer)
        form = _valid(QueryForm(values, grant=grant))
        query = actions.query_submit(actor=request.user, grant=grant, **form.cleaned_data)
        return Response(serializers.QuerySerializer(query).data, status=status.HTTP_202_ACCEPTED)


PAGE = OpenApiParameter("page", OpenApiTypes.INT, OpenApiParameter.QUERY, description="1-based page of rows.")


class QueryViewSet(ChokepointViewSet):
    queryset = DataQuery.objects.none()
    serializer_class = serializers.QueryDetailSerializer

    @extend_schema(summary="A query's record: status, row count, digest (never the rows)")
    def retrieve(self, request: SignedInAPIRequest, id: str) -> Response:
        query = access.get_query_for(request.user, id)
        context = {"results_available": results_problem(request.user, query) is None}
        return Response(serializers.QueryDetailSerializer(query, context=context).data)

    @extend_schema(
        parameters=[PAGE], responses=serializers.ResultsPageSerializer, summary="Grantee: a page of rows (recorded)"
    )
    @action(detail=True, methods=["get"])
    def results(self, request: SignedInAPIRequest, id: str) -> Response:
        number = _page_number(request)
        query = access.get_query_for(request.user, id)
        problem = results_problem(request.user, query)
        if problem:
            raise ResultsUnavailable(problem)
        if number > query.num_pages:  # before the read is recorded: a page that is not there is not a read
            raise NotFound(f"There are {query.num_pages} pages of rows.")
        result = actions.results_view(actor=request.user, query=query, page=number)
        page = Paginator(result.rows, query.page_size).page(number)
        link = lambda n: request.build_absolute_uri(f"?page={n}")  # noqa: E731
        body = {
            "count": len(result.rows),
            "page": number,
            "num_pages": page.paginator.num_pages,
            "next": link(page.next_page_number()) if page.has_next() else None,
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "truncated": query.truncated,
            "digest": query.digest,
            "columns": result.columns,
            "results": list(page.object_list),
        }
        return Response(body)


def _page_number(request: SignedInAPIRequest) -> int:
    raw = request.query_params.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) < 2**31:
        raise ValidationError({"page": ["A page number: a whole number from 1."]})
    return int(raw)


# --- tags --------------------------------------------------------------------------------


class TagListView(APIView):
    """Tags on the cases the caller sees, for autocompletion."""

    @extend_schema(parameters=[serializers.TagFilterSerializer], responses=OpenApiTypes.OBJECT, summary="Tags in use")
    def get(self, request: SignedInAPIRequest) -> Response:
        prefix = normalise_tag(_query_params(request, serializers.TagFilterSerializer).get("q", ""))
        tags = access.tags_visible_to(request.user).filter(name__startswith=prefix)
        return Response({"tags": list(tags.values_list("name", flat=True)[:50])})
