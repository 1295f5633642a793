from django.core.management.base import BaseCommand, CommandError

from operations.health import OVERDUE_FACTOR, ScheduleHealth, probe_rows, schedule_health


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"


def _status(row: ScheduleHealth) -> str:
    labels = {"disabled": "DISABLED (Custos needs it)"}
    status = labels.get(row.state) or ("OVERDUE" if row.overdue else row.state)
    if row.failing:
        status += " (last run failed)"
    return status


class Command(BaseCommand):
    help = (
        "Show each periodic task with its interval, last success and last failure, from the database. "
        f"A task whose last success is older than {OVERDUE_FACTOR}x its interval (or that never succeeded, "
        f"once {OVERDUE_FACTOR}x its interval has passed since it was first expected) is OVERDUE, and so is a "
        "task of Custos's own schedule that someone disabled; the command then exits with code 1, for monitoring. "
        "The other checks (ledger streams) follow; one that is "
        "failing also makes it exit 1."
    )

    def handle(self, *args, **options):
        rows = schedule_health()
        header = ("entry", "task", "every", "last success", "last failure", "status")
        table = [header] + [
            (
                row.name,
                row.task,
                str(row.every) if row.every else "-",
                _when(row.last_succeeded_at),
                _when(row.health.last_failed_at if row.health else None),
                _status(row),
            )
            for row in rows
        ]
        widths = [max(len(line[column]) for line in table) for column in range(len(header))]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        probes = probe_rows()
        for probe in probes:
            status = probe["state"].upper() if probe["failing"] else probe["state"]
            self.stdout.write(f"{probe['name']}  {status}  {probe['detail']}")
        overdue = [row.name for row in rows if row.overdue]
        failing = [probe["name"] for probe in probes if probe["failing"]]
        problems = []
        if overdue:
            problems.append(f"{len(overdue)} periodic task(s) overdue or disabled: {', '.join(overdue)}")
        if failing:
            problems.append(f"{len(failing)} check(s) failing: {', '.join(failing)}")
        if problems:
            raise CommandError("; ".join(problems), returncode=1)
