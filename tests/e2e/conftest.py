"""Browser tests: Playwright (Python) driving the system's Chromium against a live server. Every
journey step ends with axe-core on its page, and signing in checks the login and code pages too."""

from __future__ import annotations

import os
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
from django.conf import settings

from custos_testing.totp import fresh_code
from tests.conftest import PASSWORD, chromium_path, persona_secret

from .axe import assert_accessible

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
OUTPUT = Path(settings.BASE_DIR) / "test-output" / "screenshots"
# Pages whose markup is not ours: the API docs are Swagger UI's (its own contrast, nesting and lang).
NOT_OURS = ("/api/docs/",)


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop; Django's async-safety check would object.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    """Sign in on the login page; an enrolled persona then types the code its authenticator
    app would show now (computed here from the persona's secret)."""
    page.goto("/accounts/login/")
    assert_accessible(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    if "/accounts/2fa/authenticate/" in page.url:
        assert_accessible(page)
        page.get_by_label("Code").fill(fresh_code(persona_secret(username)))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(lambda url: "/accounts/2fa/authenticate/" not in url)


class Journey:
    """Named steps with a screenshot each, so a failure says which step broke."""

    def __init__(self, page, name: str):
        self.page = page
        self.folder = OUTPUT / name
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):  # screenshots of an earlier run would mislead
            old.unlink()
        self.count = 0

    @contextmanager
    def step(self, label: str):
        """One named step of a journey: axe-core on the page it ends on (no serious or critical
        violation) and a screenshot; on failure one more and an error that names the step."""
        try:
            yield
            if not any(path in self.page.url for path in NOT_OURS):
                assert_accessible(self.page)
        except Exception as error:
            with suppress(Exception):  # the browser may be gone; the step's name still matters
                self.shot(f"FAILED-{label}")
            raise AssertionError(f"journey step {label!r} failed: {error}") from error
        self.shot(label)

    def shot(self, label: str) -> None:
        self.count += 1
        name = "".join(char if char.isalnum() or char in "-_" else "-" for char in label)[:80]
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"), full_page=True)

    def login(self, username: str, password: str = PASSWORD) -> None:
        sign_in(self.page, username, password)

    def nav(self, label: str) -> None:
        """Follow an entry of the main navigation, and wait for the page's load event (its scripts
        are listening by then: typing into a box before that is lost on them)."""
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True).click()
        self.page.wait_for_load_state()

    def logout(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        self.page.wait_for_url("**/accounts/login/**")


@pytest.fixture
def journey(page, request):
    return Journey(page, request.node.name)
