"""Playwright driving Debian's chromium against a real running site.

`make test` installs chromium (tests/setup-system) when it is missing and the
user is root; elsewhere these tests skip, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.sites import Site, wait_until

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ADMIN_PASSWORD = "browser admin password 1"


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: run tests/setup-system as root to install chromium")


@contextmanager
def page_opener(
    browser: object, timeout_ms: int, **context_options: object
) -> Iterator[Callable[[], object]]:
    """A function that opens a page in a fresh browser context (its own cookies, so its
    own session); the contexts close on leaving."""
    contexts = []

    def open_page() -> object:
        context = browser.new_context(**context_options)
        context.set_default_timeout(timeout_ms)
        contexts.append(context)
        return context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One chromium per test module.

    Playwright's sync API runs an event loop in this thread while it is open;
    closing it with the module keeps that loop away from the in-process tests
    that pytest-xdist may run next in the same worker (Django refuses ORM calls
    under a running loop).
    """
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site("browser", tmp_path_factory.mktemp("browser-site"), LOGIN_FAILURE_LIMIT="3")
    site.manage("ensureadmin", "admin", stdin=ADMIN_PASSWORD + "\n")
    site.start()
    yield site
    site.destroy()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context()
    context.set_default_timeout(30_000)
    opened = context.new_page()
    yield opened
    context.close()


def log_in(
    page: object, site: Site, username: str = "admin", password: str = ADMIN_PASSWORD
) -> None:
    page.goto(site.url + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _navigated(error: Exception) -> bool:
    """Whether a Playwright call failed because the page navigated under it. A
    Management > Failover page reloads itself when the sync it follows ends."""
    return "net::ERR_ABORTED" in str(error) or "because of a navigation" in str(error)


def reload(page: object) -> None:
    """Reload `page`. When the page's own reload and this one cross, the browser aborts
    one of them, and the page the other one loads is the page read."""
    from playwright.sync_api import Error

    try:
        page.reload()
    except Error as error:
        if not _navigated(error):
            raise
        page.wait_for_load_state()


def reload_until(page: object, locator: object, text: str, timeout: float = 120, also=None) -> None:
    """Reload `page` until `locator` shows `text` (a page does not follow role changes by
    itself). `also` runs at each reload: an invariant that must hold all the while."""
    from playwright.sync_api import Error

    def shows() -> bool:
        if also is not None:
            also()
        try:
            reload(page)
            return text in (locator.all_inner_texts() or [""])[0]
        except Error as error:
            if not _navigated(error):
                raise
            return False  # the page reloaded itself in between: read it again

    assert wait_until(shows, timeout=timeout, interval=1), f"{page.url} never showed {text!r}"


@pytest.fixture
def new_page(browser: object) -> Iterator[object]:
    """Open a page in a fresh browser context (its own cookies, so its own session)."""
    with page_opener(browser, 30_000, ignore_https_errors=True, accept_downloads=True) as open_page:
        yield open_page
