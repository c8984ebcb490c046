"""The task UI in Debian's headless Chromium against `make up`'s real nginx and APIs."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import Page, ViewportSize, expect

from tests.support.make_up import MakeUp
from tests.web.conftest import PHONE, PageReport, open_ui

pytestmark = pytest.mark.e2e


def api(stack: MakeUp, path: str) -> str:
    return f"{stack.urls['web']}/api{path}"


def stats_now(stack: MakeUp) -> dict[str, object]:
    body: dict[str, object] = httpx.get(api(stack, "/stats"), timeout=10).json()
    return body


def shown_figures(page: Page) -> dict[str, str]:
    return {
        key: page.locator(f"#stat-{key}").inner_text()
        for key in ("total", "completed", "pending", "rate")
    }


def expected_figures(stats: dict[str, object]) -> dict[str, str]:
    rate = float(str(stats["completion_rate"]))
    return {
        "total": f"{stats['total']:,}",
        "completed": f"{stats['completed']:,}",
        "pending": f"{stats['pending']:,}",
        "rate": f"{rate * 100:.1f} %",
    }


def expect_figures(page: Page, stack: MakeUp) -> None:
    """The panel shows what /api/stats says now (it refreshes after each write)."""
    want = expected_figures(stats_now(stack))
    for key, text in want.items():
        expect(page.locator(f"#stat-{key}")).to_have_text(text)


def row(page: Page, title: str):  # type: ignore[no-untyped-def]
    return page.locator("#task-list li").filter(
        has=page.locator(".task-title", has_text=re.compile(f"^{re.escape(title)}$"))
    )


def titles(page: Page) -> list[str]:
    return page.locator("#task-list .task-title").all_inner_texts()


def test_page_loads_demo_tasks_and_figures(
    page: Page, report: PageReport, stack: MakeUp, output_path: str
) -> None:
    open_ui(page, stack)
    expect(page.locator("#task-list li")).to_have_count(20)
    expect(page.locator("#list-summary")).to_have_text("Showing 20 tasks; more below.")
    assert shown_figures(page) == expected_figures(stats_now(stack))
    per_priority = page.locator("#stats-by-priority tr")
    expect(per_priority).to_have_count(3)
    expect(page.locator('#stats-by-priority tr[data-priority="high"] td').first).to_have_text(
        f"{stats_now(stack)['by_priority']['high']['total']:,}"  # type: ignore[index]
    )
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / "desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(200)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(out / "phone.png"), full_page=True)
    assert (out / "desktop.png").stat().st_size > 10_000
    assert (out / "phone.png").stat().st_size > 10_000
    assert report.csp_violations() == []
    assert report.unexpected_console_errors() == []


def test_each_filter_changes_the_list(page: Page, report: PageReport, stack: MakeUp) -> None:
    open_ui(page, stack)
    default = titles(page)

    def apply(action) -> list[str]:  # type: ignore[no-untyped-def]
        with page.expect_response(lambda r: "/api/tasks?" in r.url and r.status == 200):
            action()
        page.wait_for_timeout(100)
        return titles(page)

    high = apply(lambda: page.get_by_role("checkbox", name="High", exact=True).check())
    assert high != default
    assert set(page.locator("#task-list .badge").all_inner_texts()) == {"High"}
    page.get_by_role("checkbox", name="High", exact=True).uncheck()

    done = apply(lambda: page.get_by_label("Status").select_option("true"))
    assert done != default
    expect(page.locator("#task-list li:not(.completed)")).to_have_count(0)
    apply(lambda: page.get_by_label("Status").select_option(""))

    word = default[0].split()[-1]
    found = apply(lambda: page.get_by_label("Search titles").fill(word))
    assert found
    assert found != default
    assert all(word.lower() in title.lower() for title in found)
    apply(lambda: page.get_by_label("Search titles").fill(""))

    low_first = apply(lambda: page.get_by_label("Sort").select_option("priority"))
    assert low_first != default
    assert set(page.locator("#task-list .badge").all_inner_texts()) == {"Low"}
    oldest = apply(lambda: page.get_by_label("Sort").select_option("created_at"))
    assert oldest != default
    assert oldest != low_first
    assert report.unexpected_console_errors() == []


def test_paging_reaches_the_second_page(page: Page, report: PageReport, stack: MakeUp) -> None:
    open_ui(page, stack)
    first = page.locator("#task-list li").evaluate_all("rows => rows.map(r => r.dataset.id)")
    with page.expect_response(lambda r: "cursor=" in r.url and r.status == 200):
        page.get_by_role("button", name="Load more").click()
    expect(page.locator("#task-list li")).to_have_count(40)
    both = page.locator("#task-list li").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert both[:20] == first
    assert len(set(both)) == 40
    expect(page.locator("#list-summary")).to_have_text("Showing 40 tasks; more below.")
    assert report.unexpected_console_errors() == []


def test_create_complete_edit_delete_and_the_stats_follow(
    page: Page, report: PageReport, stack: MakeUp
) -> None:
    open_ui(page, stack)
    title = f"Browser task {uuid.uuid4().hex[:8]}"
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Priority", exact=True).select_option("high")
    page.get_by_role("button", name="Add task").click()
    expect(page.locator("#message")).to_have_text(f"Created “{title}”.")
    task = row(page, title)
    expect(task).to_have_count(1)
    expect(task.locator(".badge")).to_have_text("High")
    expect_figures(page, stack)

    task.get_by_role("checkbox").check()
    expect(page.locator("#message")).to_contain_text("as completed")
    expect(row(page, title)).to_have_class(re.compile(r"\bcompleted\b"))
    expect_figures(page, stack)

    row(page, title).get_by_role("button", name="Edit").click()
    renamed = title + " (renamed)"
    page.locator("#task-list form input[type=text]").fill(renamed)
    page.locator("#task-list form select").select_option("low")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#message")).to_have_text(f"Saved “{renamed}”.")
    expect(row(page, renamed).locator(".badge")).to_have_text("Low")
    expect_figures(page, stack)
    low = page.locator('#stats-by-priority tr[data-priority="low"] td').first
    expect(low).to_have_text(f"{stats_now(stack)['by_priority']['low']['total']:,}")  # type: ignore[index]

    row(page, renamed).get_by_role("button", name="Delete").click()
    expect(page.locator("#message")).to_have_text(f"Deleted “{renamed}”.")
    expect(row(page, renamed)).to_have_count(0)
    expect_figures(page, stack)
    search = httpx.get(api(stack, "/tasks"), params={"q": renamed}, timeout=10).json()
    assert search["items"] == []
    assert report.unexpected_console_errors() == []


def test_a_concurrent_edit_makes_the_next_edit_say_changed_elsewhere(
    page: Page, report: PageReport, stack: MakeUp
) -> None:
    title = f"Contested {uuid.uuid4().hex[:8]}"
    created = httpx.post(api(stack, "/tasks"), json={"title": title}, timeout=10)
    assert created.status_code == 201
    task_id = created.json()["id"]
    open_ui(page, stack)
    statuses: list[int] = []
    page.on(
        "response", lambda r: statuses.append(r.status) if r.request.method == "PATCH" else None
    )
    # The editor reads the task (and its ETag) when it opens; someone else changes it meanwhile.
    with page.expect_response(lambda r: r.url.endswith(f"/api/tasks/{task_id}")):
        row(page, title).get_by_role("button", name="Edit").click()
    page.locator("#task-list form input[type=text]").fill(title + " mine")
    elsewhere = title + " theirs"
    changed = httpx.patch(api(stack, f"/tasks/{task_id}"), json={"title": elsewhere}, timeout=10)
    assert changed.status_code == 200
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#message")).to_contain_text("changed elsewhere")
    expect(row(page, elsewhere)).to_have_count(1)
    assert 412 in statuses
    assert httpx.get(api(stack, f"/tasks/{task_id}"), timeout=10).json()["title"] == elsewhere
    assert report.unexpected_console_errors("412") == []


def test_an_xss_title_renders_as_text(page: Page, report: PageReport, stack: MakeUp) -> None:
    title = f"<img src=x onerror=alert(1)> {uuid.uuid4().hex[:6]}"
    open_ui(page, stack)
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_role("button", name="Add task").click()
    expect(row(page, title)).to_have_count(1)
    expect(page.locator("#message")).to_have_text(f"Created “{title}”.")
    assert page.locator("main img").count() == 0
    page.wait_for_timeout(300)
    assert report.dialogs == []
    assert not [url for url in report.requests if url.rstrip("/").endswith("/x")]
    assert report.csp_violations() == []
    assert report.unexpected_console_errors() == []


def test_api_errors_show_the_problem_title_and_detail(
    page: Page, report: PageReport, stack: MakeUp
) -> None:
    open_ui(page, stack)
    # U+0000 cannot be stored: the API answers 400 naming the field.
    page.get_by_label("Title", exact=True).fill("nul \u0000 inside")
    page.get_by_role("button", name="Add task").click()
    message = page.locator("#message")
    expect(message).to_contain_text("Request validation failed")
    expect(message).to_contain_text("title")
    expect(message).to_have_class(re.compile(r"\berror\b"))
    assert report.unexpected_console_errors("400") == []


def test_keyboard_only_create(page: Page, report: PageReport, stack: MakeUp) -> None:
    open_ui(page, stack)
    title = f"Typed {uuid.uuid4().hex[:8]}"
    for _ in range(30):
        if page.evaluate("document.activeElement.id") == "create-title":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "create-title"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus is visible"
    page.keyboard.type(title)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "create-priority"
    page.keyboard.press("ArrowDown")  # medium -> high
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Add task"
    page.keyboard.press("Enter")
    expect(row(page, title).locator(".badge")).to_have_text("High")
    assert page.evaluate("document.activeElement.id") == "create-title"
    assert report.unexpected_console_errors() == []


def test_axe_reports_no_serious_or_critical_violation(
    page: Page, report: PageReport, stack: MakeUp
) -> None:
    open_ui(page, stack)
    axe = Axe()
    for width in (1280, PHONE["width"]):
        page.set_viewport_size(ViewportSize(width=width, height=900))
        results = axe.run(page)
        bad = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in results.response["violations"]
            if v["impact"] in {"serious", "critical"}
        ]
        assert bad == [], bad
    # The inline editor is part of the page too.
    page.locator("#task-list li").first.get_by_role("button", name="Edit").click()
    results = axe.run(page)
    bad = [
        v["id"] for v in results.response["violations"] if v["impact"] in {"serious", "critical"}
    ]
    assert bad == []
    assert report.unexpected_console_errors() == []


def test_offline_shows_a_banner_and_the_page_recovers(
    page: Page, report: PageReport, stack: MakeUp
) -> None:
    open_ui(page, stack)
    banner = page.locator("#offline-banner")
    expect(banner).to_be_hidden()
    page.context.set_offline(True)
    expect(banner).to_be_visible(timeout=10_000)
    page.context.set_offline(False)
    expect(banner).to_be_hidden(timeout=10_000)
    expect(page.locator("#task-list li")).to_have_count(20)
    assert report.unexpected_console_errors("ERR_INTERNET_DISCONNECTED") == []
