"""The no-bypass tripwire: SQL reaching the user-data store outside the gateway fails the test.

An ``execute_wrapper`` on the ``userdata`` alias lets a statement through only while the
gateway reads inside its audited context (``inside_gateway()``) or the seeder writes
(``userdata.seed.is_seeding()``). It is armed from the start of each test's setup until its
teardown, so fixtures are covered too; the test harness itself (creating, migrating and
flushing the test databases, savepoints, catalogue introspection) is not a data statement on
a ``userdata_*`` table issued while armed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from investigations.gateway import inside_gateway
from userdata.seed import is_seeding

_DATA_STATEMENT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|TRUNCATE|COPY)\b", re.IGNORECASE)


class UserDataBypass(AssertionError):
    """SQL reached the user-data store outside the gateway."""


class UserDataGuard:
    def __init__(self) -> None:
        self.armed = False
        self.violations: list[str] = []
        self._allowed = 0

    def __call__(self, execute, sql, params, many, context):
        if self._forbidden(str(sql)):
            self.violations.append(str(sql))
            raise UserDataBypass(f"SQL reached the user-data store outside the gateway: {str(sql)[:200]}")
        return execute(sql, params, many, context)

    def _forbidden(self, sql: str) -> bool:
        if not self.armed or self._allowed or inside_gateway() or is_seeding():
            return False
        return bool(_DATA_STATEMENT.match(sql)) and "userdata_" in sql.lower()

    @contextmanager
    def allow(self) -> Iterator[None]:
        """For tests of the store itself (the seeder, the router): not for the data path."""
        self._allowed += 1
        try:
            yield
        finally:
            self._allowed -= 1


ACTIVE: list[UserDataGuard] = []
