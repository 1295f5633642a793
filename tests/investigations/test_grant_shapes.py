"""The grants a user sees, in each shape ``access`` gives them: the UNION (``grants_visible_to``),
the test per grant a holder of many grants gets (``grants_tested_per_row``), what the grant
list takes (``grants_listed_for``) and the one grant ``get_grant_for`` opens
(``grant_seen_by``): always the same grants, and nothing more."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.http import Http404
from django.utils import timezone

from custos_testing import bulk
from investigations import access
from investigations.models import Grant, GrantGroupObjectPermission

from .fixtures import open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def one_row(user):
    return Grant.objects.filter(access.grant_seen_by(user))


SHAPES = (access.grants_visible_to, access.grants_tested_per_row, access.grants_listed_for, one_row)


def _seen(user) -> list[set[int]]:
    """The grants ``user`` sees in every shape; each is also opened alone by ``get_grant_for``,
    and every other grant is refused with a 404."""
    seen = [set(shape(user).values_list("pk", flat=True)) for shape in SHAPES]
    for pk in Grant.objects.values_list("pk", flat=True):
        try:
            access.get_grant_for(user, pk)
            opened = True
        except Http404:
            opened = False
        assert opened == (pk in seen[0]), (user.username, pk)
    return seen


def test_every_shape_of_the_visible_grants_is_the_same(
    active_grant, lead, member, other_investigator, outsider, reviewer, auditor, superuser, monkeypatch
):
    monkeypatch.setattr(access, "DENSE_VIEWER", 0)  # every viewer gets the per-grant test in the list
    elsewhere = open_case_for(other_investigator, reviewer)
    held_elsewhere = bulk.grants(3, case=elsewhere, grantee=member, expires_at=timezone.now() + timedelta(days=1))
    superuser.user_permissions.add(*Permission.objects.filter(codename="view_grant"))
    expected = {
        lead: {active_grant.pk},  # the case team
        member: {active_grant.pk, *(grant.pk for grant in held_elsewhere)},  # team, and grants held
        other_investigator: {grant.pk for grant in held_elsewhere},  # lead of the other case
        reviewer: {active_grant.pk, *(grant.pk for grant in held_elsewhere)},  # approved both cases
        outsider: set(),
        auditor: set(),
        superuser: set(),  # superuser status and global permissions open nothing
    }
    for user, grants in expected.items():
        assert _seen(user) == [grants] * len(SHAPES), user.username


def test_a_grant_held_through_a_group_is_seen_while_in_the_group(active_grant, outsider, monkeypatch):
    monkeypatch.setattr(access, "DENSE_VIEWER", 0)
    readers = Group.objects.create(name="grant-readers")
    view_grant = Permission.objects.get(codename="view_grant", content_type__app_label="investigations")
    GrantGroupObjectPermission.objects.create(group=readers, permission=view_grant, content_object=active_grant)
    outsider.groups.add(readers)
    assert _seen(outsider) == [{active_grant.pk}] * len(SHAPES)
    outsider.groups.remove(readers)
    assert _seen(outsider) == [set()] * len(SHAPES)


def test_the_grant_list_filters_by_held_and_lists_newest_first(active_grant, lead, member, reviewer, client):
    elsewhere = open_case_for(lead, reviewer, title="Badge misuse")
    newer = bulk.grants(2, case=elsewhere, grantee=member, expires_at=timezone.now() + timedelta(days=1))
    Grant.objects.filter(pk__in=[grant.pk for grant in newer]).update(starts_at=timezone.now() + timedelta(minutes=1))
    client.force_login(member)
    url = "/grants/"

    def listed(**query) -> list[int]:
        return [grant.pk for grant in client.get(url, query).context["grants"]]

    newest_first = sorted((grant.pk for grant in newer), reverse=True)
    assert listed() == [*newest_first, active_grant.pk]
    assert listed(held="yes") == newest_first  # member is on the team of active_grant's case, not its grantee
    assert listed(held="no") == [active_grant.pk]
    assert listed(held="maybe") == []  # a bad value: an empty list with a field error, not a 500
    client.force_login(lead)
    assert listed(held="yes") == [active_grant.pk]
