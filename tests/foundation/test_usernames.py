"""Usernames: NFKC, case-folded for uniqueness, and no name that looks like another user's,
wherever users are created or renamed."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.actions import user_create
from accounts.models import User
from accounts.usernames import skeleton

pytestmark = pytest.mark.django_db

STRONG = "a-long-and-unusual-password-77"


def _create(username: str) -> User:
    return user_create(actor=None, username=username, password=STRONG)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("LEAD", "already exists"),
        ("Lead", "already exists"),
        ("ｌｅａｄ", "already exists"),  # fullwidth: NFKC makes it "lead"
        ("l\u0435ad", "looks like the existing user “lead”"),  # Cyrillic ie (U+0435) for e
        ("\u04c0ead", "looks like the existing user “lead”"),  # Cyrillic palochka for l
        ("1ead", "looks like the existing user “lead”"),  # digit one for l
        ("Iead", "looks like the existing user “lead”"),  # capital i for l
    ],
)
def test_a_name_that_is_or_looks_like_an_existing_one_is_refused(lead, name, expected):
    with pytest.raises(ValidationError) as refused:
        _create(name)
    assert expected in " ".join(refused.value.message_dict["username"])
    assert User.objects.count() == 1


def test_distinct_names_are_accepted_and_stored_in_nfkc(lead):
    assert _create("leader").username == "leader"
    assert _create("ｉｎｅｓ").username == "ines"  # stored in NFKC
    # Lower-case i and l are plainly different: both names can exist.
    assert _create("lnes").username == "lnes"


def test_cyrillic_a_is_refused_against_latin_a(db):
    _create("anna")
    with pytest.raises(ValidationError, match="looks like the existing user “anna”"):
        _create("\u0430nn\u0430")


def test_every_save_path_refuses_a_look_alike(lead):
    """Code that saves a user without the form or the action (a sign-on back end, a script)."""
    with pytest.raises(ValidationError):
        User(username="l\u0435ad").save()
    with pytest.raises(ValidationError):
        User.objects.create_user(username="LEAD", password=STRONG)
    assert User.objects.count() == 1


def test_a_rename_to_a_look_alike_is_refused_and_saving_other_fields_still_works(lead, member):
    member.username = "l\u0435ad"
    with pytest.raises(ValidationError):
        member.save()
    member.refresh_from_db()
    member.first_name = "Mia"
    member.save()  # unchanged name: no check, nothing refused
    assert User.objects.get(pk=member.pk).first_name == "Mia"


def test_skeleton_is_stored(lead):
    assert User.objects.get(pk=lead.pk).username_skeleton == skeleton("lead")


def _admin(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def test_the_admin_add_form_shows_the_error_on_the_username(lead, superuser):
    response = _admin(superuser).post(
        "/admin/accounts/user/add/",
        {"username": "l\u0435ad", "usable_password": "true", "password1": STRONG, "password2": STRONG},
    )
    assert response.status_code == 200
    assert "looks like the existing user “lead”" in response.content.decode()
    assert not User.objects.filter(username="l\u0435ad").exists()


def test_the_admin_rename_shows_the_error_on_the_username(lead, member, superuser):
    client = _admin(superuser)
    response = client.post(
        f"/admin/accounts/user/{member.pk}/change/",
        {
            "username": "LEAD",
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    member.refresh_from_db()
    assert member.username == "member"
