"""Every route has its access rules in a matrix: persona x object state -> answer.

The routes of one case (``cases/<pk>/...``) are in ``test_case_matrix.py``, the request pages
in ``test_requests_views.py``, the case and request API operations in
``tests/api/test_matrix.py``. This file holds every other route: the remaining pages, the
rest of the API, accounts, audit, operations and the admin (one row per registered model,
its changelist standing for its add, change, delete and history pages, which use the same
permission). ``test_every_route_has_a_matrix_row`` walks the URL resolver and fails on any
route that none of these tables covers, so a route cannot ship without its access rules.

A cell is an HTTP status, or ``login`` (a redirect to the login page, the admin's included).
Pages are called with a session, API routes with a token (``anon``: no credentials). A 403
on a page records exactly one ``access.denied``; a 404 or ``login`` records nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.shortcuts import resolve_url
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from accounts.actions import user_set_privileges
from audit.events import Action
from audit.models import AuditEvent
from tests.conftest import PASSWORD, enrol_totp

from .matrix import FIXTURE_OF, events_since, ledger_mark, parse
from .test_case_matrix import CELLS as CASE_CELLS
from .test_case_matrix import GLOBAL_CELLS as CASE_GLOBAL_CELLS
from .test_case_matrix import request_for
from .test_requests_views import OPERATIONS as REQUEST_PAGE_OPERATIONS

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

# fmt: off
ROUTE_MATRIX = """
route                                      state   lead member other reviewer senior auditor admin super anon inactive
home                                       -       200    200    200    200    200    200    200    200    login  login
account_login                              -       302    302    302    302    302    302    302    302    200    200
account_logout                             -       302    302    302    302    302    302    302    302    302    302
account_inactive                           -       200    200    200    200    200    200    200    200    200    200
account_reauthenticate                     -       200    200    200    200    200    200    200    200    login  login
mfa_index                                  -       200    200    200    200    200    200    200    200    login  login
mfa_authenticate                           -       302    302    302    302    302    302    302    302    302    302
mfa_reauthenticate                         -       302    302    302    200    200    200    200    200    login  login
mfa_activate_totp                          -       302    302    302    302    302    302    302    302    login  login
mfa_deactivate_totp                        -       404    404    404    302    302    302    302    302    login  login
mfa_view_recovery_codes                    -       404    404    404    404    404    404    404    404    login  login
mfa_generate_recovery_codes                -       302    302    302    302    302    302    302    302    login  login
mfa_download_recovery_codes                -       404    404    404    404    404    404    404    404    login  login
mfa_list_webauthn                          -       200    200    200    200    200    200    200    200    login  login
mfa_add_webauthn                           -       302    302    302    302    302    302    302    302    login  login
mfa_reauthenticate_webauthn                -       302    302    302    302    302    302    302    302    login  login
mfa_remove_webauthn                        key     302    302    302    302    302    302    302    302    login  login
mfa_edit_webauthn                          key     302    302    302    302    302    302    302    302    login  login
accounts:step_up_key                       -       404    404    404    404    404    404    404    404    login  login
audit:event_list                           -       404    404    404    404    404    200    404    404    login  login
audit:event_detail                         -       404    404    404    404    404    200    404    404    login  login
audit:case_timeline                        open    404    404    404    404    404    200    404    404    login  login
audit:verification                         -       404    404    404    404    404    200    404    404    login  login
audit:export                               -       404    404    404    404    404    200    404    404    login  login
operations:schedules                       -       404    404    404    404    404    404    200    200    login  login
api-schema                                 -       200    200    200    200    200    200    200    200    401    401
api-docs                                   -       200    200    200    200    200    200    200    200    login  login
investigations:case_list                   -       200    200    200    200    200    200    200    200    login  login
investigations:case_create                 -       200    200    200    403    403    403    403    403    login  login
investigations:case_queue                  -       403    403    403    200    200    403    403    403    login  login
investigations:request_create              open    200    200    404    403    404    404    404    404    login  login
investigations:review_queue                -       403    403    403    200    200    403    403    403    login  login
investigations:decision_list               -       403    403    403    200    200    403    403    403    login  login
investigations:grant_list                  -       200    200    200    200    200    200    200    200    login  login
investigations:grant_detail                active  200    200    404    200    404    404    404    404    login  login
investigations:grant_revoke                active  200    403    404    200    404    404    404    404    login  login
investigations:query_create                active  200    200    404    404    404    404    404    404    login  login
investigations:query_detail                done    200    404    404    404    404    200    404    404    login  login
investigations:query_status                done    200    404    404    404    404    200    404    404    401    401
investigations:query_results               done    200    404    404    404    404    403    404    404    login  login
investigations:query_download              done    200    404    404    404    404    403    404    404    login  login
investigations:alert_list                  -       404    404    404    404    404    200    404    404    login  login
investigations:alert_detail                open    404    404    404    404    404    200    404    404    login  login
investigations:alert_acknowledge           open    404    404    404    404    404    200    404    404    login  login
investigations:report_list                 -       404    404    404    404    404    200    404    404    login  login
investigations:report_detail               written 200    200    404    200    404    200    404    404    login  login
investigations:protected_list              -       404    404    404    404    200    404    404    404    login  login
investigations:protected_add               -       404    404    404    404    200    404    404    404    login  login
investigations:protected_edit              listed  404    404    404    404    200    404    404    404    login  login
investigations:protected_remove            listed  404    404    404    404    200    404    404    404    login  login
api:token                                  -       201    201    201    201    201    201    201    201    401    401
api:logout                                 -       204    204    204    204    204    204    204    204    401    401
api:me                                     -       200    200    200    200    200    200    200    200    401    401
api:reviews                                -       403    403    403    200    200    403    403    403    401    401
api:audit-events                           -       404    404    404    404    404    200    404    404    401    401
api:audit-verify                           -       404    404    404    404    404    200    404    404    401    401
api:audit-verify-run                       -       404    404    404    404    404    200    404    404    401    401
api:case-list                              -       200    200    200    200    200    200    200    200    401    401
api:request-list                           -       200    200    200    200    200    200    200    200    401    401
api:grant-list                             -       200    200    200    200    200    200    200    200    401    401
api:grant-detail                           active  200    200    404    200    404    404    404    404    401    401
api:grant-queries                          active  202    403    404    404    404    404    404    404    401    401
api:grant-revoke                           active  200    403    404    200    404    404    404    404    401    401
api:step-up                                -       400    400    400    401    401    401    401    401    401    401
api:query-detail                           done    200    404    404    404    404    200    404    404    401    401
api:query-results                          done    200    404    404    404    404    403    404    404    401    401
api:tags                                   -       200    200    200    200    200    200    200    200    401    401
audit:verification_start                   -       404    404    404    404    404    302    404    404    login  login
audit:verification_status                  queued  404    404    404    404    404    200    404    404    401    401
investigations:notification_list           -       200    200    200    200    200    200    200    200    login  login
investigations:notification_open           unread  302    404    404    404    404    404    404    404    login  login
investigations:notification_read_all       -       302    302    302    302    302    302    302    302    login  login
investigations:protected_proposal_confirm  pending 404    404    404    404    302    404    404    404    login  login
investigations:protected_proposal_withdraw pending 404    404    404    404    200    404    404    404    login  login
investigations:transparency                -       404    404    404    404    404    200    404    404    login  login
investigations:transparency_json           -       404    404    404    404    404    200    404    404    401    401
investigations:transparency_csv            -       404    404    404    404    404    200    404    404    login  login
investigations:transparency_chart          -       404    404    404    404    404    200    404    404    login  login
metrics                                    -       404    404    404    404    404    404    404    404    404    404
health                                     -       200    200    200    200    200    200    200    200    200    200
investigations:task_create                 open    200    200    404    403    404    404    404    404    login  login
investigations:task_edit                   open    200    200    404    403    404    404    404    404    login  login
investigations:task_status                 open    302    302    404    403    404    404    404    404    login  login
investigations:note_edit                   open    200    403    404    403    404    404    404    404    login  login
investigations:note_history                open    200    200    404    200    404    404    404    404    login  login
investigations:case_template_list          -       404    404    404    404    404    404    200    200    login  login
investigations:case_template_edit          -       404    404    404    404    404    404    200    200    login  login
api:case-tasks                             open    200    200    404    200    404    404    404    404    401    401
api:case-templates                         -       404    404    404    404    404    404    200    200    401    401
api:case-template                          -       405    405    405    405    405    405    405    405    401    401
api:note-detail                            open    200    200    404    200    404    404    404    404    401    401
api:note-versions                          open    200    200    404    200    404    404    404    404    401    401
api:task-list                              -       200    200    200    200    200    200    200    200    401    401
api:task-detail                            open    200    200    404    200    404    404    404    404    401    401
api:task-set-status                        open    200    200    404    403    404    404    404    404    401    401
accounts:password_change                   -       200    200    200    200    200    200    200    200    login  login
accounts:settings                          -       200    200    200    200    200    200    200    200    login  login
accounts:api_token                         -       200    200    200    200    200    200    200    200    login  login
investigations:audit_case_timeline         open    404    404    404    404    404    200    404    404    login  login
investigations:case_report_html            team    200    200    404    200    404    404    404    404    login  login
investigations:case_report_html            legal   404    404    404    200    404    404    404    404    login  login
investigations:case_report_pdf             team    200    200    404    200    404    404    404    404    login  login
investigations:case_report_pdf             legal   404    404    404    200    404    404    404    404    login  login
api:case-report                            team    200    200    404    200    404    404    404    404    401    401
api:case-report                            legal   404    404    404    200    404    404    404    404    401    401
api:case-report-pdf                        team    200    200    404    200    404    404    404    404    401    401
api:case-report-pdf                        legal   404    404    404    200    404    404    404    404    401    401
openid_connect_login                       -       404    404    404    404    404    404    404    404    404    404
openid_connect_callback                    -       404    404    404    404    404    404    404    404    404    404
socialaccount_login_cancelled              -       200    200    200    200    200    200    200    200    200    200
socialaccount_login_error                  -       401    401    401    401    401    401    401    401    401    401
investigations:evidence_detail             document 200   200    404    404    404    404    404    404    login  login
investigations:evidence_download           document 200   200    404    404    404    404    404    404    login  login
investigations:evidence_release            document 200   200    404    404    404    404    404    404    login  login
investigations:query_save_evidence         done    200    404    404    404    404    403    404    404    login  login
api:evidence-detail                        document 200   200    404    404    404    404    404    404    401    401
api:evidence-download                      document 200   200    404    404    404    404    404    404    401    401
api:query-evidence                         done    201    404    404    404    404    403    404    404    401    401
"""

# The admin: the site's own pages by name, and one row per registered model (app.model), its
# changelist standing for its add, change, delete and history pages (the same permission).
ADMIN_MATRIX = """
route                               state   lead   member other  reviewer senior auditor admin  super  anon   inactive
index                               -       login  login  login  login  login  login  200    200    login  login
login                               -       403    403    403    403    403    403    302    302    login  login
logout                              -       302    302    302    302    302    302    302    302    login  login
password_change                     -       login  login  login  login  login  login  200    200    login  login
password_change_done                -       login  login  login  login  login  login  200    200    login  login
app_list                            -       login  login  login  login  login  login  404    200    login  login
jsi18n                              -       login  login  login  login  login  login  200    200    login  login
autocomplete                        -       login  login  login  login  login  login  403    403    login  login
view_on_site                        -       login  login  login  login  login  login  404    404    login  login
accounts.user                       -       login  login  login  login  login  login  403    200    login  login
audit.auditevent                    -       login  login  login  login  login  login  403    403    login  login
audit.streamdestination             -       login  login  login  login  login  login  200    200    login  login
investigations.protectedsubject     -       login  login  login  login  login  login  200    200    login  login
operations.taskhealth               -       login  login  login  login  login  login  403    200    login  login
knox.authtoken                      -       login  login  login  login  login  login  403    200    login  login
django_celery_beat.periodictask     -       login  login  login  login  login  login  403    200    login  login
django_celery_beat.intervalschedule -       login  login  login  login  login  login  403    200    login  login
django_celery_beat.crontabschedule  -       login  login  login  login  login  login  403    200    login  login
django_celery_beat.solarschedule    -       login  login  login  login  login  login  403    200    login  login
django_celery_beat.clockedschedule  -       login  login  login  login  login  login  403    200    login  login
axes.accessattempt                  -       login  login  login  login  login  login  403    200    login  login
socialaccount.socialaccount         -       login  login  login  login  login  login  403    200    login  login
accounts.secondfactorreset          -       login  login  login  login  login  login  403    200    login  login
"""
# fmt: on

PERSONAS, PAGE_CELLS = parse(ROUTE_MATRIX, key_columns=2)
_, ADMIN_CELLS = parse(ADMIN_MATRIX, key_columns=2)


def _admin_route(key: str) -> str:
    """``index`` -> ``admin:index``; ``accounts.user`` -> ``admin:accounts_user_changelist``."""
    return f"admin:{key.replace('.', '_')}_changelist" if "." in key else f"admin:{key}"


CELLS = {**PAGE_CELLS, **{(_admin_route(key), state): row for (key, state), row in ADMIN_CELLS.items()}}
# The case matrix's cast, and a senior legal reviewer (the registry is theirs) who is on no case.
PERSONA_FIXTURES = {**FIXTURE_OF, "senior": "senior_reviewer"}
CELLS_BY_ROUTE = {route: state for route, state in CELLS}


# --- building each route's call ------------------------------------------------------------


class World:
    """The objects a row needs, made on first use through the shared fixtures (so through the actions)."""

    def __init__(self, request):
        self._request = request
        self._made: dict[str, object] = {}

    def __getattr__(self, name: str):
        return self._request.getfixturevalue(name)

    def once(self, name: str, make: Callable[[World], object]):
        """``make(self)`` the first time a row asks for ``name``, the same object after."""
        if name not in self._made:
            self._made[name] = make(self)
        return self._made[name]


def _alert(world: World):
    from investigations.actions.oversight import alerts_scan
    from investigations.models import Alert

    world.protected_request  # noqa: B018  (submitting it is what raises the alert)
    alerts_scan()
    return Alert.objects.order_by("pk").first()


def _report(world: World):
    from investigations import actions
    from investigations.actions.oversight import alerts_scan
    from investigations.models import GrantReport

    grant = world.active_grant
    actions.grant_revoke(actor=world.lead, grant=grant, reason="Done.")
    alerts_scan()
    return GrantReport.objects.get(grant=grant)


def _protected(world: World):
    from investigations.models import ProtectedSubject

    world.protected_request  # noqa: B018  (its fixture puts account 1 on the registry)
    return ProtectedSubject.objects.get(account_id=1)


def _first_event(world: World) -> int:
    world.open_case  # noqa: B018
    return AuditEvent.objects.order_by("seq").values_list("seq", flat=True).first()


def _key(world: World) -> int:
    """A security key of the reviewer's: changing it asks everyone to confirm it is them first."""
    from allauth.mfa.models import Authenticator

    from tests.webauthn import add_key

    world.once("key", lambda world: add_key(world.reviewer))
    return Authenticator.objects.get(user=world.reviewer, type=Authenticator.Type.WEBAUTHN).pk


def _grant(world: World) -> int:
    return world.active_grant.pk


def _fresh_grant(world: World) -> int:
    """A new grant to ``lead`` on the open case, for a route that changes the grant it is called on."""
    from investigations import actions

    from .fixtures import file_request

    world.store  # noqa: B018  (the accounts the request names)
    data_request = actions.request_submit(actor=world.lead, request=file_request(world.open_case, world.lead))
    actions.request_decide(actor=world.second_reviewer, request=data_request, outcome="approve")
    data_request.refresh_from_db()
    return data_request.grant.pk


def _query(world: World) -> int:
    return world.succeeded_query.pk


def ALERT(world: World) -> int:  # upper case: read as a constant in the table below
    return world.once("alert", _alert).pk


def REPORT(world: World) -> int:
    return world.once("report", _report).pk


def ENTRY(world: World) -> int:
    return world.once("entry", _protected).pk


def _notification(world: World) -> int:
    """A notification for ``lead``, linking to the start page."""
    from investigations import actions

    [notification] = actions.notify(
        actor=None, recipients=[world.lead], kind="request_decided", text="Decided.", link=reverse("home")
    )
    return notification.pk


def _verification_run(world: World) -> int:
    from audit import runs

    return runs.run_start(actor=world.auditor).pk


_next_account = iter(range(3, 1000))


def _proposal(world: World) -> int:
    """A pending proposal, by a second senior reviewer, to remove a fresh registry entry."""
    from investigations import actions
    from tests.conftest import make_user

    proposer = world.once("proposer", lambda _: make_user("senior_two", ["legal_reviewer", "senior_legal_reviewer"]))
    world.store  # noqa: B018  (the account must exist)
    subject = actions.protected_subject_add(actor=proposer, account_id=next(_next_account), category="journalist")
    return actions.protected_weakening_propose(actor=proposer, subject=subject, reason="No longer a journalist.").pk


def _task(world: World) -> int:
    """A task on the open case, added by its lead (a fresh one each call)."""
    from investigations import actions

    return actions.task_create(actor=world.lead, case=world.open_case, title="Interview the finance team").pk


def _note(world: World) -> int:
    from investigations import actions

    return actions.case_add_note(actor=world.lead, case=world.open_case, text="Interviewed the finance team.").pk


def _case_report(audience: str) -> Callable[[World], int]:
    """A report of the open case: the team's version (by its lead) or the legal version (by the
    reviewer who approved the case, off the team)."""

    def made(world: World) -> int:
        from investigations import actions

        producer = world.lead if audience == "team" else world.reviewer
        produce = lambda _: actions.case_report_produce(actor=producer, case=world.open_case)  # noqa: E731
        return world.once(f"report_{audience}", produce).pk

    return made


def _document(world: World) -> int:
    """A team document on the open case, uploaded by its lead (evidence in a store of the test's own)."""
    from investigations import actions

    from .test_case_matrix import evidence_file

    world.evidence_store  # noqa: B018
    return actions.evidence_upload(actor=world.lead, case=world.open_case, upload=evidence_file()).pk


def DOCUMENT(world: World) -> int:
    return world.once("document", _document)


def _enrolled(username: str) -> bool:
    from accounts.models import User
    from tests.stepup import enrol

    for user in User.objects.filter(username=username):
        enrol(user)
    return True


def _token_body(username: str) -> dict:
    """A token request as a client sends it: with a code when the persona has a second factor."""
    from accounts.factors import has_second_factor
    from accounts.models import User
    from tests.stepup import unused_code

    body = {"username": username, "password": PASSWORD}
    user = User.objects.filter(username=username).first()
    if user is not None and has_second_factor(user):
        # The client of this row gets its own token first, with the first unused code of the
        # steps now, next, previous (tests.stepup.unused_code): this request takes the last one.
        body["otp"] = unused_code(user, order=(-1, 1, 0))
    return body


def _get(name: str, *ids: Callable[[World], object], kind: str = "page"):
    """A GET of route ``name``, its URL arguments taken from the world when the row runs."""
    return lambda world, username: (kind, "get", reverse(name, args=[of(world) for of in ids]), {})


def _post(name: str, *ids: Callable[[World], object], data: dict | None = None, kind: str = "page"):
    return lambda world, username: (kind, "post", reverse(name, args=[of(world) for of in ids]), data or {})


CALLS: dict[str, Callable[[World, str], tuple[str, str, str, dict]]] = {
    "home": _get("home"),
    "account_login": _get("account_login"),
    "account_logout": _post("account_logout"),
    "account_inactive": _get("account_inactive"),
    "account_reauthenticate": _get("account_reauthenticate"),
    "mfa_index": _get("mfa_index"),
    "mfa_authenticate": _get("mfa_authenticate"),
    "mfa_reauthenticate": _get("mfa_reauthenticate"),
    "mfa_activate_totp": _get("mfa_activate_totp"),
    "mfa_deactivate_totp": _get("mfa_deactivate_totp"),
    "mfa_view_recovery_codes": _get("mfa_view_recovery_codes"),
    "mfa_generate_recovery_codes": _get("mfa_generate_recovery_codes"),
    "mfa_download_recovery_codes": _get("mfa_download_recovery_codes"),
    "mfa_list_webauthn": _get("mfa_list_webauthn"),
    "mfa_add_webauthn": _get("mfa_add_webauthn"),
    "mfa_reauthenticate_webauthn": _get("mfa_reauthenticate_webauthn"),
    "mfa_remove_webauthn": _get("mfa_remove_webauthn", _key),
    "mfa_edit_webauthn": _get("mfa_edit_webauthn", _key),
    "accounts:step_up_key": _get("accounts:step_up_key"),
    "audit:event_list": _get("audit:event_list"),
    "audit:event_detail": _get("audit:event_detail", _first_event),
    "audit:case_timeline": _get("audit:case_timeline", lambda world: world.open_case.reference),
    "audit:verification": _get("audit:verification"),
    "audit:export": _get("audit:export"),
    "operations:schedules": _get("operations:schedules"),
    "api-schema": _get("api-schema", kind="api"),
    "api-docs": _get("api-docs"),
    "investigations:case_list": _get("investigations:case_list"),
    "investigations:case_create": _get("investigations:case_create"),
    "investigations:case_queue": _get("investigations:case_queue"),
    "investigations:request_create": _get("investigations:request_create", lambda world: world.open_case.pk),
    "investigations:review_queue": _get("investigations:review_queue"),
    "investigations:decision_list": _get("investigations:decision_list"),
    "investigations:grant_list": _get("investigations:grant_list"),
    "investigations:grant_detail": _get("investigations:grant_detail", _grant),
    "investigations:grant_revoke": _get("investigations:grant_revoke", _grant),
    "investigations:query_create": _get("investigations:query_create", _grant),
    "investigations:query_detail": _get("investigations:query_detail", _query),
    "investigations:query_status": _get("investigations:query_status", _query),
    "investigations:query_results": _get("investigations:query_results", _query),
    "investigations:query_download": _get("investigations:query_download", _query),
    "investigations:alert_list": _get("investigations:alert_list"),
    "investigations:alert_detail": _get("investigations:alert_detail", ALERT),
    "investigations:alert_acknowledge": _get("investigations:alert_acknowledge", ALERT),
    "investigations:report_list": _get("investigations:report_list"),
    "investigations:report_detail": _get("investigations:report_detail", REPORT),
    "investigations:protected_list": _get("investigations:protected_list"),
    "investigations:protected_add": _get("investigations:protected_add"),
    "investigations:protected_edit": _get("investigations:protected_edit", ENTRY),
    "investigations:protected_remove": _get("investigations:protected_remove", ENTRY),
    "api:token": lambda world, username: (
        "api",
        "post",
        reverse("api:token"),
        _token_body(username),
    ),
    "api:logout": _post("api:logout", kind="api"),
    "api:me": _get("api:me", kind="api"),
    "api:reviews": _get("api:reviews", kind="api"),
    "api:audit-events": _get("api:audit-events", kind="api"),
    "api:audit-verify": _get("api:audit-verify", kind="api"),
    "api:audit-verify-run": _get("api:audit-verify-run", _verification_run, kind="api"),
    "api:case-list": _get("api:case-list", kind="api"),
    "api:request-list": _get("api:request-list", kind="api"),
    "api:grant-list": _get("api:grant-list", kind="api"),
    "api:grant-detail": _get("api:grant-detail", _grant, kind="api"),
    # The two below change the grant they are called on: a new one for each persona.
    "api:grant-queries": _post("api:grant-queries", _fresh_grant, data={"category": "ip_logs"}, kind="api"),
    # Revoking needs a recent second factor: the persona enrols one (its token then carries a code).
    "api:grant-revoke": lambda world, username: (
        _enrolled(username) and "api",
        "post",
        reverse("api:grant-revoke", args=[_fresh_grant(world)]),
        {"reason": "Stop."},
    ),
    # A code that is never right: 401 for a user with a second factor, 400 (none to check) without.
    "api:step-up": _post("api:step-up", data={"otp": "not-a-code"}, kind="api"),
    "api:query-detail": _get("api:query-detail", _query, kind="api"),
    "api:query-results": _get("api:query-results", _query, kind="api"),
    "api:tags": _get("api:tags", kind="api"),
    "audit:verification_start": _post("audit:verification_start"),
    "audit:verification_status": _get("audit:verification_status", lambda world: world.once("run", _verification_run)),
    "investigations:notification_list": _get("investigations:notification_list"),
    "investigations:notification_open": _get(
        "investigations:notification_open", lambda world: world.once("notification", _notification)
    ),
    "investigations:notification_read_all": _post("investigations:notification_read_all"),
    # Confirming changes the proposal: a fresh one for each persona.
    "investigations:protected_proposal_confirm": _post("investigations:protected_proposal_confirm", _proposal),
    "investigations:protected_proposal_withdraw": _get(
        "investigations:protected_proposal_withdraw", lambda world: world.once("proposal", _proposal)
    ),
    "investigations:transparency": _get("investigations:transparency"),
    "investigations:transparency_json": _get("investigations:transparency_json"),
    "investigations:transparency_csv": _get("investigations:transparency_csv"),
    "investigations:transparency_chart": _get("investigations:transparency_chart", lambda world: "outcomes"),
    "metrics": _get("metrics"),
    "health": _get("health"),
    "accounts:password_change": _get("accounts:password_change"),
    "accounts:settings": _get("accounts:settings"),
    "accounts:api_token": _get("accounts:api_token"),
    "investigations:audit_case_timeline": _get(
        "investigations:audit_case_timeline", lambda world: world.open_case.reference
    ),
    "investigations:task_create": _get("investigations:task_create", lambda world: world.open_case.pk),
    "investigations:task_edit": _get("investigations:task_edit", lambda world: world.once("task", _task)),
    # Setting a status changes the task: a fresh one for each persona.
    "investigations:task_status": _post("investigations:task_status", _task, data={"status": "done"}),
    "investigations:note_edit": _get("investigations:note_edit", lambda world: world.once("note", _note)),
    "investigations:note_history": _get("investigations:note_history", lambda world: world.once("note", _note)),
    "investigations:case_template_list": _get("investigations:case_template_list"),
    "investigations:case_template_edit": _get("investigations:case_template_edit", lambda world: "fraud"),
    "api:case-tasks": _get("api:case-tasks", lambda world: world.open_case.pk, kind="api"),
    "api:case-templates": _get("api:case-templates", kind="api"),
    "api:case-template": _get("api:case-template", lambda world: "fraud", kind="api"),
    "api:note-detail": _get("api:note-detail", lambda world: world.once("note", _note), kind="api"),
    "api:note-versions": _get("api:note-versions", lambda world: world.once("note", _note), kind="api"),
    "api:task-list": _get("api:task-list", kind="api"),
    "api:task-detail": _get("api:task-detail", lambda world: world.once("task", _task), kind="api"),
    "api:task-set-status": _post("api:task-set-status", _task, data={"status": "done"}, kind="api"),
    # Single sign-on is not configured here (no provider "sso": 404); tests/sso covers it configured.
    "openid_connect_login": lambda world, username: ("page", "get", reverse("openid_connect_login", args=["sso"]), {}),
    "openid_connect_callback": lambda world, username: (
        "page",
        "get",
        reverse("openid_connect_callback", args=["sso"]),
        {},
    ),
    "socialaccount_login_cancelled": _get("socialaccount_login_cancelled"),
    "socialaccount_login_error": _get("socialaccount_login_error"),
    "investigations:evidence_detail": _get("investigations:evidence_detail", DOCUMENT),
    "investigations:evidence_download": _get("investigations:evidence_download", DOCUMENT),
    "investigations:evidence_release": _get("investigations:evidence_release", DOCUMENT),
    "investigations:query_save_evidence": _get("investigations:query_save_evidence", _query),
    "api:evidence-detail": _get("api:evidence-detail", DOCUMENT, kind="api"),
    "api:evidence-download": _get("api:evidence-download", DOCUMENT, kind="api"),
    "api:query-evidence": _post("api:query-evidence", _query, data={"formats": ["json"]}, kind="api"),
    "admin:index": _get("admin:index"),
    "admin:login": _get("admin:login"),
    "admin:logout": _post("admin:logout"),
    "admin:password_change": _get("admin:password_change"),
    "admin:password_change_done": _get("admin:password_change_done"),
    "admin:app_list": _get("admin:app_list", lambda world: "accounts"),
    "admin:jsi18n": _get("admin:jsi18n"),
    "admin:autocomplete": _get("admin:autocomplete"),
    "admin:view_on_site": _get("admin:view_on_site", lambda world: 1, lambda world: 1),
}


# Routes whose rows differ by state get their call per state: (route, state) -> call.
STATE_CALLS: dict[tuple[str, str], Callable[[World, str], tuple[str, str, str, dict]]] = {
    (route, audience): _get(route, _case_report(audience), kind="api" if route.startswith("api:") else "page")
    for route in (
        "investigations:case_report_html",
        "investigations:case_report_pdf",
        "api:case-report",
        "api:case-report-pdf",
    )
    for audience in ("team", "legal")
}


def _call(route: str, world: World, username: str, state: str = "-"):
    if (route, state) in STATE_CALLS:
        return STATE_CALLS[(route, state)](world, username)
    if route in CALLS:
        return CALLS[route](world, username)
    if route.startswith("admin:") and route.endswith("_changelist"):
        return "page", "get", reverse(route), {}
    raise AssertionError(f"no way to call {route}: add it to CALLS in {__name__}")


# --- running a row -------------------------------------------------------------------------


def _observed(response) -> str:
    """``login`` for a redirect to a login page (the site's or the admin's), else the status code."""
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith((resolve_url(settings.LOGIN_URL), reverse("admin:login"))) and "?next=" in location:
            return "login"
    return str(response.status_code)


def _client(kind: str, user):
    from django.test import Client
    from rest_framework.test import APIClient

    from tests.api.conftest import token_client

    if kind == "api":
        if user is None:
            return APIClient()
        if not user.is_active:  # a token made while active, used after deactivation
            user.is_active = True
            client = token_client(user)
            user.is_active = False
            return client
        return token_client(user)
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def world(request) -> World:
    cache.clear()  # the token endpoint's throttle counts per test
    yield World(request)
    cache.clear()


@pytest.mark.parametrize(("route", "state"), sorted(CELLS), ids=lambda value: value)
def test_route_matrix(route, state, world, request):
    failures = []
    for persona, expected in CELLS[(route, state)].items():
        user = request.getfixturevalue(PERSONA_FIXTURES[persona]) if PERSONA_FIXTURES[persona] else None
        kind, method, url, data = _call(route, world, user.username if user else "nobody", state)
        client = _client(kind, user)
        mark = ledger_mark()
        if kind == "api":
            response = getattr(client, method)(url, data, format="json")
        else:
            response = getattr(client, method)(url, data)
        got = _observed(response)
        if got != expected:
            failures.append(f"{persona}: expected {expected}, got {got}")
        elif kind == "page" and expected == "404" and events_since(mark):
            failures.append(f"{persona}: a 404 should record nothing, recorded {events_since(mark)}")
    assert not failures, f"{route} ({state}):\n" + "\n".join(failures)


# --- every route is covered ----------------------------------------------------------------


def _routes(patterns, prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    """(name, route) of every named URL pattern, namespaces included."""
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            found.append((f"{namespace}{pattern.name}" if pattern.name else "", prefix + str(pattern.pattern)))
    return found


def _name_of(url: str) -> str:
    return resolve(url.split("?")[0]).view_name


def covered_routes() -> dict[str, str]:
    """Every route name some matrix covers, with the table that covers it."""
    from tests.api.test_matrix import CASE_OPERATIONS, REQUEST_OPERATIONS

    covered = {route: "ROUTE_MATRIX in tests/investigations/test_route_matrix.py" for route, _ in CELLS}
    stand_in = SimpleNamespace(pk=1)
    cast_stub = {"other_investigator": SimpleNamespace(username="x"), "member": stand_in}
    for page, _ in CASE_CELLS:
        covered[_name_of(request_for(page, stand_in, cast_stub)[1])] = "CASE_MATRIX in test_case_matrix.py"
    for page, _ in CASE_GLOBAL_CELLS:
        covered[f"investigations:{page}"] = "GLOBAL_MATRIX in test_case_matrix.py"
    for _, name in REQUEST_PAGE_OPERATIONS.values():
        covered[name] = "OPERATIONS in test_requests_views.py"
    for _, suffix, *_ in CASE_OPERATIONS.values():
        covered[_name_of(f"/api/v1/cases/1/{suffix.format(member=1)}")] = "CASE_OPERATIONS in tests/api/test_matrix.py"
    for _, suffix, *_ in REQUEST_OPERATIONS.values():
        covered[_name_of(f"/api/v1/requests/1/{suffix}")] = "REQUEST_OPERATIONS in tests/api/test_matrix.py"
    return covered


ADMIN_OPERATION = ("_add", "_change", "_delete", "_history")
ADMIN_OBJECT_REDIRECT = re.compile(r"^admin/(\w+)/(\w+)/<path:object_id>/$")


def _matrix_name(name: str, route: str = "") -> str:
    """The row that covers a route: an admin model's pages share its changelist's row."""
    if name in CELLS_BY_ROUTE or not route.startswith("admin/"):
        return name
    if name == "" and (match := ADMIN_OBJECT_REDIRECT.match(route)):
        return f"admin:{match[1]}_{match[2]}_changelist"  # the old object URL, redirecting to its change page
    if name == "" and route == "admin/(?P<url>.*)$":
        return "admin:index"  # the catch-all: the index's access rules (login or 404)
    if name == "admin:auth_user_password_change":
        return "admin:accounts_user_changelist"  # the user admin's password page
    for suffix in ADMIN_OPERATION:
        if name.endswith(suffix):
            return name.removesuffix(suffix) + "_changelist"
    return name


def test_every_route_has_a_matrix_row():
    covered = covered_routes()
    missing = sorted(
        (name, route)
        for name, route in _routes(get_resolver().url_patterns)
        if _matrix_name(name, route) not in covered
    )
    header = " ".join(f"{persona:<6}" for persona in PERSONAS)
    hint = "\n".join(
        f"  {name or '(unnamed: give it a name)':<40} {'-':<11} {'?      ' * len(PERSONAS)}   # {route}"
        for name, route in missing
    )
    assert not missing, (
        f"{len(missing)} route(s) have no row in any authorization matrix. A route of one case "
        "(cases/<pk>/...) goes in CASE_MATRIX (tests/investigations/test_case_matrix.py, with its call in "
        "request_for); a request page in OPERATIONS (test_requests_views.py); a case or request API operation in "
        "CASE_OPERATIONS / REQUEST_OPERATIONS (tests/api/test_matrix.py). Anything else: add a row to ROUTE_MATRIX "
        "and its call to CALLS in tests/investigations/test_route_matrix.py, with the answer each persona must get "
        f"(an HTTP status or 'login'; state: '-' or the object's state). Columns: route state {header}\n{hint}"
    )


def test_every_admin_model_has_a_row():
    """A model newly registered in the admin (case contents, say) cannot go unnoticed."""
    rows = {route for route, _ in CELLS}
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        assert name in rows, f"{model._meta.label} is in the admin without a row: add {name} to ROUTE_MATRIX"


def test_no_row_names_a_route_that_does_not_exist():
    names = {_matrix_name(name, route) for name, route in _routes(get_resolver().url_patterns)}
    stale = sorted(route for route, _ in CELLS if route not in names)
    assert not stale, f"rows for routes that no longer exist: {stale}"


def test_staff_status_granted_to_an_investigator_opens_nothing_of_a_case(lead, active_grant, client):
    """The admin persona is plain staff; an investigator made staff keeps exactly their case access."""
    user_set_privileges(actor=None, user=lead, is_staff=True)
    enrol_totp(lead)  # staff need a second factor
    client.force_login(lead)
    assert client.get("/admin/").status_code == 200
    for model in ("case", "datapullrequest", "grant", "dataquery"):
        assert client.get(f"/admin/investigations/{model}/").status_code == 404
    assert AuditEvent.objects.filter(action=Action.USER_PRIVILEGES_CHANGED).exists()
