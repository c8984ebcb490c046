"""Fixtures of the web tests: `make up` (real nginx and APIs), Debian's Chromium through
pytest-playwright with the CSP enforced, and what a page reports (console, CSP, dialogs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, ViewportSize, expect

from tests.support.make_up import MakeUp, running_make_up

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)

# Runs before the page's own scripts; CDP-injected, so the CSP stays enforced for the page.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    # bypass_csp stays False (the default): the page runs under the real policy.
    return {**browser_context_args, "viewport": DESKTOP, "bypass_csp": False}


@pytest.fixture(scope="session")
def stack() -> Iterator[MakeUp]:
    """One `make up` for the UI and proxy tests (they leave the demo data's shape alone)."""
    with running_make_up() as up:
        yield up


@dataclass
class PageReport:
    """What the page said while a test drove it."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations")
        return found

    def unexpected_console_errors(self, *allowed: str) -> list[str]:
        """Console errors, less those naming one of `allowed` (a status a test provoked)."""
        return [e for e in self.console_errors if not any(a in e for a in allowed)]


@pytest.fixture
def report(page: Page) -> PageReport:
    found = PageReport(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url", "")
            found.console_errors.append(f"{message.text} [{where}]")

    def on_dialog(dialog: Dialog) -> None:
        found.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.console_errors.append(f"pageerror: {error}"))
    page.on("dialog", on_dialog)
    page.on("request", lambda request: found.requests.append(request.url))
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    return found


def open_ui(page: Page, stack: MakeUp) -> None:
    """Loads the UI from nginx and waits for the list and the figures."""
    page.goto(stack.urls["web"] + "/")
    page.locator("#task-list li").first.wait_for()
    # A locator assertion, not wait_for_function: polling a string would need eval, which the
    # page's CSP (rightly) forbids.
    expect(page.locator("#stat-total")).not_to_have_text("…")
