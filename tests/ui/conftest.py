"""The everyday-UI tests reuse the investigation fixtures (cases, requests, grants) built through the actions."""

from tests.investigations.conftest import (  # noqa: F401  (fixtures)
    active_grant,
    draft_request,
    migrated_rows,
    open_case,
    protected_request,
    store,
    submitted_request,
    succeeded_query,
    wide_grant,
)
