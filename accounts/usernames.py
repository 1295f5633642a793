"""Usernames: one normal form, and no name that looks like another user's.

A username is stored in Unicode NFKC form and compared case-folded, so ``Ines``, ``INES`` and
``ines`` are one name. A name is also refused when it merely *looks* like an existing one:
Cyrillic a (U+0430) for Latin ``a``, ``I`` (capital i) for ``l``, fullwidth or mathematical letters.
Look-alikes come from Unicode's confusables table (UTS #39) as shipped by the maintained
``confusable_homoglyphs`` package: every character is replaced by one representative of its
class of look-alikes (the "skeleton"), and two names with the same skeleton look the same.
Look-alikes made of several characters (``rn`` for ``m``) are not covered.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from confusable_homoglyphs.confusables import confusables_data
from django.core.exceptions import ValidationError
from django.db.models import Q

# Marks around right-to-left characters in the table, not part of the character.
_DIRECTION_MARKS = "\u200e\u200f"


def canonical(username: str) -> str:
    """NFKC: the form a username is stored in."""
    return unicodedata.normalize("NFKC", username or "")


def folded(username: str) -> str:
    """The form usernames are compared in for uniqueness: NFKC, case-folded."""
    return canonical(username).casefold()


@cache
def _representatives() -> dict[str, str]:
    """Character -> the representative of its look-alike class (built once, ~10,000 entries).

    The table pairs characters with their look-alikes; the classes are the connected groups of
    those pairs. A class's representative is its ASCII letter or digit when it has one."""
    parent: dict[str, str] = {}

    def find(char: str) -> str:
        while parent.setdefault(char, char) != char:
            parent[char] = parent[parent[char]]
            char = parent[char]
        return char

    for char, homoglyphs in confusables_data.items():
        for homoglyph in homoglyphs:
            other = homoglyph["c"].strip(_DIRECTION_MARKS)
            if len(char) == 1 and len(other) == 1:
                parent[find(char)] = find(other)
    classes: dict[str, list[str]] = {}
    for char in list(parent):
        classes.setdefault(find(char), []).append(char)
    representatives = {}
    for members in classes.values():
        ascii_alnum = sorted(char for char in members if char.isascii() and char.isalnum())
        chosen = ascii_alnum[0] if ascii_alnum else min(members)
        representatives.update(dict.fromkeys(members, chosen))
    return representatives


def _skeleton(text: str) -> str:
    table = _representatives()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFD", "".join(table.get(char, char) for char in decomposed))


def skeleton(username: str) -> str:
    """What a username looks like: equal skeletons mean names a reader can mistake for each
    other. Look-alikes are mapped before and after case-folding, so that ``Ines`` (capital i)
    and ``lnes`` match while ``ines`` and ``lnes`` (plainly different in lower case) do not."""
    return _skeleton(_skeleton(canonical(username)).casefold())


def check_username(username: str, *, others) -> None:
    """Refuse ``username`` if another user (``others``: a queryset without the user being
    saved) has the same name in another case or a name that looks the same. Raises
    ``ValidationError`` with a message that names the existing user."""
    candidates = others.filter(Q(username__iexact=canonical(username)) | Q(username_skeleton=skeleton(username)))
    names = sorted(candidates.values_list("username", flat=True))
    for existing in names:
        if folded(existing) == folded(username):
            raise ValidationError(
                f"A user named “{existing}” already exists; usernames differing only in upper and "
                "lower case are the same name.",
                code="username_taken",
            )
    if names:
        lookalike = names[0]
        raise ValidationError(
            f"This username looks like the existing user “{lookalike}” (characters from another "
            "alphabet or look-alike letters); choose a name that cannot be mistaken for it.",
            code="username_confusable",
        )
