"""``manage.py seed_scale``: set-based volumes on PostgreSQL, a clear refusal elsewhere.

Seeds a small volume (the command's set-based path is the same for millions) and checks the
counts, the shape the actions would have left (lead, membership, permissions, references from
the counter), and that the ledger it appended to still verifies.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from audit.models import AuditEvent
from investigations.access import cases_visible_to
from investigations.models import Case, CaseMember, CaseReferenceCounter, CaseStatus
from tests.conftest import on_postgres
from userdata.models import Account, LoginEvent
from userdata.seed import seeding

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.mark.slow
@pytest.mark.skipif(not on_postgres(), reason="seed_scale uses PostgreSQL's set-based SQL")
def test_seed_scale_adds_the_volumes_asked_for_and_the_ledger_still_verifies(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    events_before = AuditEvent.objects.count()
    out = StringIO()
    call_command(
        "seed_scale",
        "--cases", "1200", "--events", "2500", "--accounts", "300", "--login-events", "6000", "--leads", "3",
        stdout=out,
    )  # fmt: skip
    assert "seeded 1,200 cases, 2,500 events, 300 accounts, 6,000 login events" in out.getvalue()

    cases = Case.objects.filter(title__startswith="Scale case ")
    assert cases.count() == 1200
    # 1 in 20 pending approval, 2 in 20 closed, the rest open; references from this year's counter.
    assert cases.filter(status=CaseStatus.PENDING_APPROVAL).count() == 60
    assert cases.filter(status=CaseStatus.CLOSED, closed_at__isnull=False).count() == 120
    assert cases.filter(status=CaseStatus.OPEN).count() == 1020
    counter = CaseReferenceCounter.objects.get()
    assert cases.filter(reference=f"INV-{counter.year}-{counter.last_number:04d}").exists()
    leads = list(User.objects.filter(username__startswith="scale-lead-").order_by("username"))
    assert [lead.username for lead in leads] == ["scale-lead-001", "scale-lead-002", "scale-lead-003"]
    assert CaseMember.objects.filter(case__in=cases, is_lead=True).count() == 1200
    # Each lead sees exactly their own cases through the access chokepoint.
    assert sum(cases_visible_to(lead).count() for lead in leads) == 1200
    lead = leads[0]
    own_open = cases.filter(lead=lead, status=CaseStatus.OPEN).first()
    own_closed = cases.filter(lead=lead, status=CaseStatus.CLOSED).first()
    assert lead.has_perm("investigations.change_case", own_open)
    assert lead.has_perm("investigations.view_case", own_closed)
    assert not lead.has_perm("investigations.change_case", own_closed)
    assert not leads[1].has_perm("investigations.view_case", own_open)

    assert AuditEvent.objects.count() == events_before + 3 + 2500  # three user.created, then the volume
    seeded = AuditEvent.objects.filter(details__seeded=True)
    assert seeded.count() == 2500
    assert not seeded.exclude(case_reference__in=cases.values("reference")).exists()
    call_command("verify_audit", "--no-progress", stdout=StringIO())  # raises CommandError if the chain broke

    with seeding():
        assert Account.objects.using("userdata").count() >= 300
        assert LoginEvent.objects.using("userdata").count() == 6000


@pytest.mark.slow
@pytest.mark.skipif(not on_postgres(), reason="seed_scale uses PostgreSQL's set-based SQL")
def test_seed_scale_adds_to_what_is_there(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    call_command("seed_scale", "--cases", "30", "--leads", "2", stdout=StringIO())
    call_command("seed_scale", "--cases", "30", "--leads", "2", "--events", "10", stdout=StringIO())
    assert Case.objects.filter(title__startswith="Scale case ").count() == 60
    assert Case.objects.values("reference").distinct().count() == Case.objects.count()
    call_command("verify_audit", "--no-progress", stdout=StringIO())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "nothing to seed"),
        (["--cases", "-1"], "--cases must be between"),
        (["--login-events", "1000000000"], "--login-events must be between"),
        (["--events", "5", "--leads", "0"], "--leads must be between"),
    ],
)
def test_seed_scale_refuses_bad_arguments(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_scale", *arguments, stdout=StringIO())
    assert not Case.objects.exists()


@pytest.mark.skipif(on_postgres(), reason="the refusal of the embedded SQLite default")
def test_seed_scale_refuses_sqlite_with_a_clear_message():
    events = AuditEvent.objects.count()
    with pytest.raises(CommandError, match=r"PostgreSQL's set-based SQL.*sqlite.*seed_demo"):
        call_command("seed_scale", "--cases", "10", "--events", "10", stdout=StringIO())
    assert not Case.objects.exists() and AuditEvent.objects.count() == events
