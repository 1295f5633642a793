from django.urls import path

from .views import case as case_views
from .views import dashboard, evidence, notification, oversight, protected, query, transparency
from .views import grant as grant_views
from .views import note as note_views
from .views import report as report_views
from .views import request as request_views
from .views import retention as retention_views
from .views import task as task_views
from .views import timeline as timeline_views

app_name = "investigations"

urlpatterns = [
    path("cases/", case_views.case_list, name="case_list"),
    path("cases/new/", case_views.case_create, name="case_create"),
    path("cases/awaiting-approval/", case_views.case_queue, name="case_queue"),
    path("cases/<int:pk>/", case_views.case_detail, name="case_detail"),
    path("cases/<int:pk>/edit/", case_views.case_edit, name="case_edit"),
    path("cases/<int:pk>/members/", case_views.case_members, name="case_members"),
    path("cases/<int:pk>/members/remove/", case_views.case_member_remove, name="case_member_remove"),
    path("cases/<int:pk>/notes/", case_views.case_note_add, name="case_note_add"),
    path("cases/<int:pk>/close/", case_views.case_close, name="case_close"),
    path("cases/<int:pk>/classify/", case_views.case_classify, name="case_classify"),
    path("cases/<int:pk>/evidence/", evidence.case_evidence_add, name="case_evidence_add"),
    path("evidence/<int:pk>/", evidence.evidence_detail, name="evidence_detail"),
    path("evidence/<int:pk>/download/", evidence.evidence_download, name="evidence_download"),
    path("evidence/<int:pk>/release/", evidence.evidence_release, name="evidence_release"),
    path("queries/<int:pk>/save-as-evidence/", evidence.query_save_evidence, name="query_save_evidence"),
    path("cases/<int:pk>/timeline/", timeline_views.case_timeline, name="case_timeline"),
    path("cases/<int:pk>/report/", report_views.case_report_produce, name="case_report_produce"),
    path("cases/<int:pk>/legal-hold/", retention_views.case_legal_hold, name="case_legal_hold"),
    path("case-reports/<int:pk>/", report_views.case_report_html, name="case_report_html"),
    path("case-reports/<int:pk>/report.pdf", report_views.case_report_pdf, name="case_report_pdf"),
    path("oversight/cases/<str:reference>/timeline/", timeline_views.audit_case_timeline, name="audit_case_timeline"),
    path("cases/<int:pk>/tasks/new/", task_views.task_create, name="task_create"),
    path("tasks/<int:pk>/edit/", task_views.task_edit, name="task_edit"),
    path("notes/<int:pk>/edit/", note_views.note_edit, name="note_edit"),
    path("notes/<int:pk>/history/", note_views.note_history, name="note_history"),
    path("tasks/<int:pk>/status/", task_views.task_status, name="task_status"),
    path("case-templates/", task_views.case_template_list, name="case_template_list"),
    path("case-templates/<str:case_type>/", task_views.case_template_edit, name="case_template_edit"),
    path("cases/<int:pk>/approve/", case_views.case_approve, name="case_approve"),
    path("cases/<int:pk>/reject/", case_views.case_reject, name="case_reject"),
    path("cases/<int:pk>/resubmit/", case_views.case_resubmit, name="case_resubmit"),
    path("cases/<int:pk>/hold/", case_views.case_hold, name="case_hold"),
    path("cases/<int:pk>/resume/", case_views.case_resume, name="case_resume"),
    path("cases/<int:case_pk>/requests/new/", request_views.request_create, name="request_create"),
    path("requests/<int:pk>/", request_views.request_detail, name="request_detail"),
    path("requests/<int:pk>/edit/", request_views.request_edit, name="request_edit"),
    path("requests/<int:pk>/submit/", request_views.request_submit, name="request_submit"),
    path("requests/<int:pk>/withdraw/", request_views.request_withdraw, name="request_withdraw"),
    path("requests/<int:pk>/decide/", request_views.request_decide, name="request_decide"),
    path("review/", request_views.review_queue, name="review_queue"),
    path("review/decisions/", dashboard.decision_list, name="decision_list"),
    path("grants/", grant_views.grant_list, name="grant_list"),
    path("grants/<int:pk>/", grant_views.grant_detail, name="grant_detail"),
    path("grants/<int:pk>/revoke/", grant_views.grant_revoke, name="grant_revoke"),
    path("grants/<int:grant_pk>/queries/new/", query.query_create, name="query_create"),
    path("queries/<int:pk>/", query.query_detail, name="query_detail"),
    path("queries/<int:pk>/status.json", query.query_status, name="query_status"),
    path("queries/<int:pk>/results/", query.query_results, name="query_results"),
    path("queries/<int:pk>/results.csv", query.query_download, name="query_download"),
    path("oversight/alerts/", oversight.alert_list, name="alert_list"),
    path("oversight/alerts/<int:pk>/", oversight.alert_detail, name="alert_detail"),
    path("oversight/alerts/<int:pk>/acknowledge/", oversight.alert_acknowledge, name="alert_acknowledge"),
    path("oversight/reports/", oversight.report_list, name="report_list"),
    path("oversight/reports/<int:pk>/", oversight.report_detail, name="report_detail"),
    path("notifications/", notification.notification_list, name="notification_list"),
    path("notifications/<int:pk>/", notification.notification_open, name="notification_open"),
    path("notifications/read/", notification.notification_read_all, name="notification_read_all"),
    path("oversight/transparency/", transparency.report_page, name="transparency"),
    path("oversight/transparency/report.json", transparency.report_json, name="transparency_json"),
    path("oversight/transparency/report.csv", transparency.report_csv, name="transparency_csv"),
    path("oversight/transparency/<slug:chart>.svg", transparency.report_chart, name="transparency_chart"),
    path("protected/", protected.protected_list, name="protected_list"),
    path("protected/new/", protected.protected_add, name="protected_add"),
    path("protected/<int:pk>/edit/", protected.protected_edit, name="protected_edit"),
    path("protected/<int:pk>/remove/", protected.protected_remove, name="protected_remove"),
    path("protected/proposals/<int:pk>/confirm/", protected.proposal_confirm, name="protected_proposal_confirm"),
    path("protected/proposals/<int:pk>/withdraw/", protected.proposal_withdraw, name="protected_proposal_withdraw"),
]
