"""The console in a real headless browser: Debian's chromium driven by Playwright.

Signs in as a viewer (no replay button), then as an operator: filters, opens a letter,
replays it and sees it applied. Screenshots go to ``.artifacts/console/`` (kept by CI as
test artifacts). ``scripts/test`` installs chromium when it is absent, so this runs in CI;
elsewhere it skips when no chromium is found.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from ops._serve import serving
from ops.test_admin_api import OPERATOR, VIEWER, _seed, _settings
from wa_bridge.ops.backend import admin_api

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


def _chromium() -> str:
    found = os.environ.get("WA_BRIDGE_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: scripts/test installs it (scripts/ensure-chromium)")
        pytest.skip("no chromium here: run scripts/ensure-chromium")
    return found


@pytest.fixture
async def console_url(tmp_path: Path) -> AsyncIterator[str]:
    settings = _settings(tmp_path)
    assert settings.database_url is not None
    await _seed(settings.database_url)
    routers, closers = admin_api(settings)
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    with serving(app) as url:
        yield url
    for close in closers:
        await close()


async def test_viewer_reads_operator_replays_in_a_browser(console_url: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=_chromium(),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.pages[0] if browser.pages else await browser.new_page()
            # --- a viewer reads, and has no replay button
            await page.goto(f"{console_url}/admin/letters")
            await page.get_by_label("Token").fill(VIEWER)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url("**/admin/letters")
            assert await page.locator("#role").inner_text() == "viewer"
            await page.screenshot(path=str(ARTIFACTS / "1-viewer-letters.png"), full_page=True)
            await page.get_by_role("link", name="1", exact=True).click()
            await page.wait_for_selector("#why")
            assert await page.locator("#replay").count() == 0
            assert "5550001234" not in await page.content()  # phones masked for viewers
            await page.screenshot(path=str(ARTIFACTS / "2-viewer-letter.png"), full_page=True)
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url("**/admin/sign-in")

            # --- an operator filters, opens a letter, replays it
            await page.get_by_label("Token").fill(OPERATOR)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url("**/admin/letters")
            await page.get_by_label("Error class").fill("CrmRejected")
            await page.get_by_role("button", name="Filter").click()
            await page.wait_for_url("**error_class=CrmRejected**")
            assert await page.locator("tbody tr").count() == 2
            await page.get_by_role("link", name="1", exact=True).click()
            await page.wait_for_selector("#preview-ok")
            await page.screenshot(path=str(ARTIFACTS / "3-operator-letter.png"), full_page=True)
            await page.locator("#replay").click()
            await page.wait_for_selector("#notice")
            assert (await page.locator("#notice").inner_text()).startswith("replayed")
            assert "(replayed)" in await page.locator("h1").inner_text()
            await page.screenshot(path=str(ARTIFACTS / "4-operator-replayed.png"), full_page=True)

            # --- it is applied: the trace shows the CRM record ids
            await page.get_by_role("link", name="Trace", exact=True).click()
            await page.get_by_label("wamid, event id, phone, bsuid:… or contact id").fill(
                "+525550001234"
            )
            await page.get_by_role("button", name="Trace", exact=True).click()
            await page.wait_for_selector("section.event")
            text = await page.locator("main").inner_text()
            assert "replayed" in text and "upsert_contact" in text
            assert "5550001234" not in await page.content()
            await page.screenshot(path=str(ARTIFACTS / "5-operator-trace.png"), full_page=True)
        finally:
            await browser.close()
