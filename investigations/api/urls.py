"""``/api/v1/``: the resources, the auditor endpoints and authentication, under one namespace."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import MeView, StepUpView, TokenCreateView, TokenLogoutView
from audit.api import EventListView, VerifyRunView, VerifyView

from . import evidence, reports, views, workspace

app_name = "api"

router = SimpleRouter()
router.register("cases", views.CaseViewSet, basename="case")
router.register("requests", views.RequestViewSet, basename="request")
router.register("grants", views.GrantViewSet, basename="grant")
router.register("queries", views.QueryViewSet, basename="query")
router.register("tasks", workspace.TaskViewSet, basename="task")
router.register("notes", workspace.NoteViewSet, basename="note")
router.register("evidence", evidence.EvidenceViewSet, basename="evidence")

urlpatterns = [
    path("auth/token/", TokenCreateView.as_view(), name="token"),
    path("auth/logout/", TokenLogoutView.as_view(), name="logout"),
    path("auth/step-up/", StepUpView.as_view(), name="step-up"),
    path("me/", MeView.as_view(), name="me"),
    path("reviews/", views.ReviewQueueView.as_view(), name="reviews"),
    path("tags/", views.TagListView.as_view(), name="tags"),
    path("cases/<str:id>/tasks/", workspace.CaseTaskListView.as_view(), name="case-tasks"),
    path("cases/<str:id>/evidence/", evidence.CaseEvidenceView.as_view(), name="case-evidence"),
    path("queries/<str:id>/evidence/", evidence.QueryEvidenceView.as_view(), name="query-evidence"),
    path("cases/<str:id>/timeline/", workspace.CaseTimelineView.as_view(), name="case-timeline"),
    path("cases/<str:id>/reports/", reports.CaseReportListView.as_view(), name="case-reports"),
    path("cases/<str:id>/legal-hold/", reports.CaseLegalHoldView.as_view(), name="case-legal-hold"),
    path("case-reports/<str:id>/", reports.CaseReportView.as_view(), name="case-report"),
    path("case-reports/<str:id>/pdf/", reports.CaseReportPdfView.as_view(), name="case-report-pdf"),
    path("case-templates/", workspace.CaseTemplateListView.as_view(), name="case-templates"),
    path("case-templates/<str:case_type>/", workspace.CaseTemplateView.as_view(), name="case-template"),
    path("audit/events/", EventListView.as_view(), name="audit-events"),
    path("audit/verify/", VerifyView.as_view(), name="audit-verify"),
    path("audit/verify/<str:id>/", VerifyRunView.as_view(), name="audit-verify-run"),
    *router.urls,
]
