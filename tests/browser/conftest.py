"""Browser tests: real server processes (tests/harness.py) driven through Debian's Chromium.

They skip only when /usr/bin/chromium is missing and CI is unset; under CI a missing browser or
Playwright is a failure, not a silent skip.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.browser.shop import Account, Shop
from tests.harness import ServerProcess, create_admin

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
WALL = {"width": 1920, "height": 1080}
ADMIN_EMAIL = "admin@campus.test"
ADMIN_PASSWORD = "admin-pass-1"


def _browser_missing_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config, items):
    """Without Chromium, skip locally; under CI let the `browser` fixture fail loudly."""
    reason = _browser_missing_reason()
    if reason is None or os.environ.get("CI"):
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


# Package scope, not session: while the sync Playwright API is open the main thread looks like
# it runs an event loop, which would break every asyncio test collected after this package.
@pytest.fixture(scope="package")
def browser():
    reason = _browser_missing_reason()
    if reason:
        pytest.fail(f"browser tests cannot run: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server_env(mongo, database_name) -> dict[str, str]:
    """The environment of this test's server: its own database, no poll rate limit surprises."""
    return {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": database_name}


@pytest.fixture
def start_server(server_env, tmp_path) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server process with extra environment settings; all are stopped at the end."""
    started: list[ServerProcess] = []

    def start(port: int | None = None, **settings: str) -> ServerProcess:
        env = {**server_env, **{key.upper(): str(value) for key, value in settings.items()}}
        process = ServerProcess(env, tmp_path / f"server{len(started)}", port=port).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def make_shop(server_env) -> Iterator[Callable[[ServerProcess], Shop]]:
    shops: list[Shop] = []
    admin_made = False

    def build(server: ServerProcess) -> Shop:
        nonlocal admin_made
        if not admin_made:
            create_admin(server_env, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, name="Campus Admin")
            admin_made = True
        shop = Shop(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        shops.append(shop)
        return shop

    yield build
    for shop in shops:
        shop.close()


@pytest.fixture
def open_page(browser):
    """A fresh browser context and page at a viewport; script errors and anything the pages'
    Content-Security-Policy refused fail the test."""
    contexts = []
    errors: list[str] = []
    refused: list[str] = []

    def open_(viewport: dict[str, int] = PHONE, *, mobile: bool | None = None, motion: bool = False):
        context = browser.new_context(**context_options(viewport, mobile=mobile, motion=motion))
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not errors, "JavaScript errors on the pages:\n" + "\n".join(errors)
    assert not refused, "The pages broke their own Content-Security-Policy:\n" + "\n".join(refused)


def context_options(viewport: dict[str, int] = PHONE, *, mobile: bool | None = None,
                    motion: bool = False) -> dict:
    """A person's browser in India at a viewport (a phone below 700 px wide).

    Pages ask for reduced motion unless `motion` is set: the live badge's endless pulse kept
    Chromium compositing 60 frames a second, and without it Chromium's CPU in the watch-tier
    module went from 24 s to 10 s. The pages honour `prefers-reduced-motion`; the screenshots
    keep motion, as people see the pages.
    """
    phone = viewport["width"] < 700 if mobile is None else mobile
    return {"viewport": viewport, "device_scale_factor": 1, "is_mobile": phone, "has_touch": phone,
            "locale": "en-IN", "timezone_id": "Asia/Kolkata", "color_scheme": "light",
            "reduced_motion": "no-preference" if motion else "reduce"}


def sign_in(page, base_url: str, account: Account, next_path: str | None = None) -> None:
    """Sign in through /login like a person would, landing on `next_path` or the role's home."""
    from playwright.sync_api import expect

    url = f"{base_url}/login" + (f"?next={next_path}" if next_path else "")
    page.goto(url)
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    homes = {"store_employee": "/kitchen", "admin": "/admin"}
    expected = next_path or homes.get(account.role, "/orders")
    # A page may name its state in the query once it has loaded (the report's ?date=).
    expect(page).to_have_url(re.compile(re.escape(base_url + expected) + r"(\?[^#]*)?$"))


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("UPDATE_DOC_SCREENSHOTS") and name in DOC_SCREENSHOTS:
        docs = REPO / "static" / "docs"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs / f"{name}.png")
    return path


# The screenshots the README shows (static/docs/), refreshed with UPDATE_DOC_SCREENSHOTS=1.
DOC_SCREENSHOTS = {"kitchen-1920x1080", "track-ready-390x844", "menu-390x844", "checkout-390x844",
                   "console-admin-390x844", "console-kitchen-store-1920x1080",
                   "board-1920x1080", "board-1280x720", "board-stalled-1920x1080", "report-1920x1080"}
# The keyboard kitchen and its printed ticket (tests/browser/test_kitchen_keyboard.py).
DOC_SCREENSHOTS |= {"kitchen-keyboard-1920x1080", "kitchen-ticket-80mm"}
