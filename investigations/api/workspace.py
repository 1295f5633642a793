"""The case workspace in the API: tasks and the staff's case templates.

Like the rest of the API: objects from ``access.py`` (404 when invisible), the page's form
validates the values, an action makes the change.
"""

from __future__ import annotations

from django.http import Http404, QueryDict
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.http import SignedInAPIRequest

from .. import access, actions, timeline
from ..errors import InvalidTransition
from ..forms.case import NoteForm
from ..forms.task import TaskForm, TaskStatusForm
from ..models import CaseNote, CaseTask, CaseTemplate, CaseType, NoteVersion, TaskStatus
from ..models.case import TEXT_MAX, TITLE_MAX
from .serializers import NoteSerializer, NoteWriteSerializer, UserRefSerializer
from .views import ChokepointViewSet, _body, _query_params, _valid

# --- serializers ----------------------------------------------------------------------------


class TaskSerializer(serializers.ModelSerializer):
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    case_reference = serializers.CharField(source="case.reference", read_only=True)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = CaseTask
        fields = [
            "id",
            "case",
            "case_reference",
            "title",
            "description",
            "assignee",
            "due_date",
            "status",
            "order",
            "overdue",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_overdue(self, task: CaseTask) -> bool:
        return task.is_overdue(timezone.localdate())


class TaskWriteSerializer(serializers.Serializer):
    """Add a task (title required) or change one (PATCH: any of these)."""

    title = serializers.CharField(max_length=TITLE_MAX)
    description = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)
    assignee = serializers.IntegerField(required=False, allow_null=True, help_text="User id of a team member.")
    due_date = serializers.DateField(required=False, allow_null=True)


class TaskStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TaskStatus.choices)


class CaseTemplateSerializer(serializers.Serializer):
    case_type = serializers.ChoiceField(choices=CaseType.choices)
    tasks = serializers.ListField(child=serializers.CharField(max_length=TITLE_MAX))


class CaseTemplateWriteSerializer(serializers.Serializer):
    tasks = serializers.ListField(child=serializers.CharField(), help_text="Task titles, in order.")


# --- helpers ----------------------------------------------------------------------------------


def _task_form_data(values: dict, task: CaseTask | None = None) -> QueryDict:
    """API values in the shape of the page's ``TaskForm`` (a PATCH keeps what it does not name)."""
    current = {}
    if task is not None:
        current = {
            "title": task.title,
            "description": task.description,
            "assignee": task.assignee_id,
            "due_date": task.due_date,
        }
    merged = current | values
    data = QueryDict(mutable=True)
    for name, value in merged.items():
        data[name] = "" if value is None else str(value)
    return data


def _closed_conflict(case) -> None:
    if case.is_closed:
        raise InvalidTransition("The case is closed; its tasks no longer change.")


# --- views ------------------------------------------------------------------------------------


class CaseTaskListView(APIView):
    """``/cases/{id}/tasks/``: the case's tasks; the team adds one."""

    @extend_schema(responses=TaskSerializer(many=True), summary="Tasks of a case")
    def get(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id)
        return Response(TaskSerializer(case.tasks.select_related("case", "assignee"), many=True).data)

    @extend_schema(request=TaskWriteSerializer, responses={201: TaskSerializer}, summary="Team: add a task")
    def post(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id, perm=access.CONTRIBUTE_PERM)
        _closed_conflict(case)
        form = _valid(TaskForm(_task_form_data(_body(request, TaskWriteSerializer)), case=case))
        task = actions.task_create(actor=request.user, case=case, **form.cleaned_data)
        return Response(TaskSerializer(task).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="The caller's unfinished tasks, overdue first"),
    retrieve=extend_schema(summary="A task"),
    partial_update=extend_schema(request=TaskWriteSerializer, summary="Team: change a task"),
)
class TaskViewSet(ChokepointViewSet):
    queryset = CaseTask.objects.none()
    serializer_class = TaskSerializer

    def list(self, request: SignedInAPIRequest) -> Response:
        page = self.paginate_queryset(access.my_open_tasks(request.user).select_related("case", "assignee"))
        return self.get_paginated_response(TaskSerializer(page, many=True).data)

    def retrieve(self, request: SignedInAPIRequest, id: str) -> Response:
        return Response(TaskSerializer(access.get_task_for(request.user, id)).data)

    def partial_update(self, request: SignedInAPIRequest, id: str) -> Response:
        task = access.get_task_for(request.user, id, change=True)
        _closed_conflict(task.case)
        values = _body(request, TaskWriteSerializer, partial=True)
        current = CaseTask.objects.get(pk=task.pk)
        form = _valid(TaskForm(_task_form_data(values, task), instance=current, case=task.case))
        task = actions.task_update(actor=request.user, task=task, **form.cleaned_data)
        return Response(TaskSerializer(access.get_task_for(request.user, task.pk)).data)

    @extend_schema(request=TaskStatusSerializer, responses=TaskSerializer, summary="Team: move a task")
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request: SignedInAPIRequest, id: str) -> Response:
        task = access.get_task_for(request.user, id, change=True)
        _closed_conflict(task.case)
        form = _valid(TaskStatusForm(_body(request, TaskStatusSerializer)))
        actions.task_set_status(actor=request.user, task=task, status=form.cleaned_data["status"])
        return Response(TaskSerializer(access.get_task_for(request.user, task.pk)).data)


def _template_data(template: CaseTemplate | None, case_type: str) -> dict:
    titles = [task.title for task in template.tasks.all()] if template else []
    return {"case_type": case_type, "tasks": titles}


class CaseTemplateListView(APIView):
    @extend_schema(responses=CaseTemplateSerializer(many=True), summary="Staff: the case templates")
    def get(self, request: SignedInAPIRequest) -> Response:
        templates = {template.case_type: template for template in access.case_templates_for(request.user)}
        return Response([_template_data(templates.get(value), value) for value in CaseType.values])


class CaseTemplateView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("case_type", str, OpenApiParameter.PATH, enum=CaseType.values)],
        request=CaseTemplateWriteSerializer,
        responses=CaseTemplateSerializer,
        summary="Staff: set the default tasks of a case type",
    )
    def put(self, request: SignedInAPIRequest, case_type: str) -> Response:
        access.case_templates_for(request.user)  # 404 for anyone but staff
        if case_type not in CaseType.values:
            raise Http404
        titles = _body(request, CaseTemplateWriteSerializer)["tasks"]
        template = actions.case_template_set(actor=request.user, case_type=case_type, titles=titles)
        return Response(_template_data(template, case_type))


# --- notes ------------------------------------------------------------------------------------


class NoteVersionSerializer(serializers.ModelSerializer):
    html = serializers.CharField(read_only=True)

    class Meta:
        model = NoteVersion
        fields = ["number", "text", "html", "written_at"]
        read_only_fields = fields


@extend_schema_view(
    retrieve=extend_schema(summary="A note (Markdown text and its rendering)"),
    partial_update=extend_schema(request=NoteWriteSerializer, summary="Author: edit a note (the old version is kept)"),
)
class NoteViewSet(ChokepointViewSet):
    queryset = CaseNote.objects.none()
    serializer_class = NoteSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def retrieve(self, request: SignedInAPIRequest, id: str) -> Response:
        return Response(NoteSerializer(access.get_note_for(request.user, id)).data)

    def partial_update(self, request: SignedInAPIRequest, id: str) -> Response:
        note = access.get_note_for(request.user, id, edit=True)
        if note.case.is_closed:
            raise InvalidTransition("The case is closed; its notes no longer change.")
        form = _valid(NoteForm(_body(request, NoteWriteSerializer)))
        note = actions.note_edit(actor=request.user, note=note, text=form.cleaned_data["text"])
        return Response(NoteSerializer(access.get_note_for(request.user, note.pk)).data)

    @extend_schema(responses=NoteVersionSerializer(many=True), summary="Every version of a note, oldest first")
    @action(detail=True, methods=["get"])
    def versions(self, request: SignedInAPIRequest, id: str) -> Response:
        note = access.get_note_for(request.user, id)
        return Response(NoteVersionSerializer(note.versions.order_by("number"), many=True).data)


# --- timeline ---------------------------------------------------------------------------------


class TimelineEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=timeline.KINDS)
    person = serializers.CharField()
    sentence = serializers.CharField()


class TimelineFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=timeline.KINDS, required=False)
    person = serializers.CharField(max_length=150, required=False, help_text="Username of who acted.")


class CaseTimelineView(APIView):
    """``/cases/{id}/timeline/``: the case's events as sentences, oldest first."""

    @extend_schema(
        parameters=[TimelineFilterSerializer],
        responses=TimelineEntrySerializer(many=True),
        summary="The case timeline (filter by kind and person)",
    )
    def get(self, request: SignedInAPIRequest, id: str) -> Response:
        case = access.get_case_for(request.user, id)
        filters = _query_params(request, TimelineFilterSerializer)
        events = timeline.case_events(
            case, kind=filters.get("kind", ""), person=filters.get("person", ""), viewer=request.user
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        entries = [timeline.entry(event).__dict__ for event in page]
        return paginator.get_paginated_response(TimelineEntrySerializer(entries, many=True).data)
