"""Case involvement history (historical independence) and the team-change alert kind.

The backfill rebuilds the periods from what the database and the ledger already know: team
periods from ``case.opened`` / ``case.member_added`` / ``case.member_removed`` events and the
current team; filers from the requests; grantees from ``grant.issued`` events, the current
grantees and the ``permission.removed`` events of those who left a grant.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Min
from django.utils import timezone

TEAM_EVENTS = ("case.opened", "case.member_added", "case.member_removed")


def _team_periods(apps, users: set[int]) -> list:
    AuditEvent = apps.get_model("audit", "AuditEvent")
    Case = apps.get_model("investigations", "Case")
    CaseMember = apps.get_model("investigations", "CaseMember")
    CaseMembership = apps.get_model("investigations", "CaseMembership")
    cases = dict(Case.objects.values_list("reference", "pk"))
    opened, rows = {}, []
    for event in AuditEvent.objects.filter(action__in=TEAM_EVENTS).order_by("seq").iterator():
        case_id = cases.get(event.case_reference)
        user_id = event.actor_id if event.action == "case.opened" else (event.details or {}).get("user_id")
        if case_id is None or user_id not in users:
            continue
        if event.action == "case.member_removed":
            joined = opened.pop((case_id, user_id), None)
            if joined is not None:
                rows.append(CaseMembership(case_id=case_id, user_id=user_id, involvement="team", joined_at=joined, left_at=event.occurred_at))
        else:
            opened.setdefault((case_id, user_id), event.occurred_at)
    for member in CaseMember.objects.all().iterator():
        joined = opened.pop((member.case_id, member.user_id), member.added_at)
        rows.append(CaseMembership(case_id=member.case_id, user_id=member.user_id, involvement="team", joined_at=joined))
    # On the team by the ledger, gone from the table without an event: kept as a closed period.
    now = timezone.now()
    for (case_id, user_id), joined in opened.items():
        rows.append(CaseMembership(case_id=case_id, user_id=user_id, involvement="team", joined_at=joined, left_at=now))
    return rows


def _requesters(apps) -> list:
    DataPullRequest = apps.get_model("investigations", "DataPullRequest")
    CaseMembership = apps.get_model("investigations", "CaseMembership")
    filed = DataPullRequest.objects.values("case_id", "requested_by_id").annotate(first=Min("created_at")).order_by()
    return [
        CaseMembership(case_id=row["case_id"], user_id=row["requested_by_id"], involvement="requester", joined_at=row["first"])
        for row in filed
    ]


def _grantees(apps, users: dict[str, int]) -> list:
    AuditEvent = apps.get_model("audit", "AuditEvent")
    Grant = apps.get_model("investigations", "Grant")
    CaseMembership = apps.get_model("investigations", "CaseMembership")
    issued = {}
    for event in AuditEvent.objects.filter(action="grant.issued", target_type="investigations.grant").iterator():
        names = (event.details or {}).get("grantees") or []
        issued[event.target_id] = {users[name] for name in names if name in users}
    left = {}
    removed = AuditEvent.objects.filter(action="permission.removed", target_type="investigations.grant")
    for event in removed.order_by("seq").iterator():
        left.setdefault((event.target_id, (event.details or {}).get("user_id")), event.occurred_at)
    rows = []
    for grant in Grant.objects.all().iterator():
        current = set(grant.grantees.values_list("pk", flat=True))
        for user_id in current | issued.get(str(grant.pk), set()):
            left_at = None if user_id in current else left.get((str(grant.pk), user_id), grant.revoked_at or grant.expires_at)
            rows.append(
                CaseMembership(case_id=grant.case_id, user_id=user_id, involvement="grantee", grant_id=grant.pk, joined_at=grant.starts_at, left_at=left_at)
            )
    return rows


def backfill(apps, schema_editor) -> None:
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    CaseMembership = apps.get_model("investigations", "CaseMembership")
    names = dict(User.objects.values_list("username", "pk"))
    rows = _team_periods(apps, set(names.values())) + _requesters(apps) + _grantees(apps, names)
    CaseMembership.objects.bulk_create(rows, batch_size=500)


class Migration(migrations.Migration):

    dependencies = [
        ('investigations', '0005_stream_alert_kinds'),
        ('audit', '0004_action_choices'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='alert',
            name='kind',
            field=models.CharField(choices=[('protected_request_submitted', 'Protected request submitted'), ('protected_request_decided', 'Protected request decided'), ('tripwire', 'Query tripwire'), ('repeated_denials', 'Repeated denied queries'), ('off_hours_query', 'Query outside working hours'), ('subject_in_unrelated_cases', 'Subject requested in unrelated cases'), ('refiled_after_rejection', 'Request re-filed after rejection'), ('stream_silenced', 'Ledger stream paused, deleted or redirected'), ('stream_failing', 'Ledger stream failing'), ('team_changed_pending_decision', 'Team changed while a decision was pending')], max_length=40),
        ),
        migrations.CreateModel(
            name='CaseMembership',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('involvement', models.CharField(choices=[('team', 'Team member'), ('requester', 'Filed a request'), ('grantee', 'Grantee')], max_length=16)),
                ('joined_at', models.DateTimeField()),
                ('left_at', models.DateTimeField(blank=True, null=True)),
                ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='investigations.case')),
                ('grant', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='investigations.grant')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['joined_at', 'id'],
                'indexes': [models.Index(fields=['case', 'user'], name='investigati_case_id_5f149e_idx'), models.Index(fields=['user', 'case'], name='investigati_user_id_3ab093_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('involvement', 'team'), ('left_at__isnull', True)), fields=('case', 'user'), name='one_open_team_period')],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
