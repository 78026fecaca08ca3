"""The app in a real browser: `streamlit run app.py` on loopback, driven by Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SHORT_SUITE_NAME, free_port, write_short_suite

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DECISIONS = ("Run locally", "Route to a hosted API", "Local, with a gap")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# `streamlit run app.py` with advisor.settings.DEFAULT_SUITE pointed at the file in argv[1] first (nothing else has
# imported advisor yet, so the Calibrate page and the calibration thread both read the short suite).
SHORT_SUITE_BOOT = (
    "import sys\n"
    "from pathlib import Path\n"
    "import advisor.settings\n"
    "advisor.settings.DEFAULT_SUITE = Path(sys.argv.pop(1))\n"
    "from streamlit.web.cli import main\n"
    "sys.argv[0] = 'streamlit'\n"
    "main()\n"
)


@pytest.fixture
def app_url(isolated_home: Path, tmp_path: Path) -> Iterator[str]:
    """A real Streamlit server for app.py on a free loopback port, no telemetry; stopped after the test."""
    yield from _serve_app(tmp_path)


@pytest.fixture
def short_suite_app_url(isolated_home: Path, tmp_path: Path) -> Iterator[str]:
    """The same server, calibrating with the short suite (one repetition, two tasks: 5 requests, not 17)."""
    yield from _serve_app(tmp_path, suite=write_short_suite(tmp_path / "suite.yaml"))


def _serve_app(tmp_path: Path, suite: Path | None = None) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "streamlit.log").open("wb")
    launcher = ["-m", "streamlit"] if suite is None else ["-c", SHORT_SUITE_BOOT, str(suite)]
    cmd = [
        sys.executable,
        *launcher,
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited at start:\n{(tmp_path / 'streamlit.log').read_text()}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text.strip() == "ok":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail("streamlit did not answer its health check within 60 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def click(page: object, key: str) -> None:
    """Click the Streamlit button with this widget key (its help icon is a button too, hence the test id)."""
    page.locator(f".st-key-{key} button[data-testid^='stBaseButton']").first.click()  # type: ignore[attr-defined]


def snap(page: object, path: Path) -> None:
    """A screenshot of the whole page: Streamlit scrolls inside its main section, so grow the viewport to fit it."""
    height = page.evaluate(  # type: ignore[attr-defined]
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stMainBlockContainer]')]"
        ".map(e => e.scrollHeight), 1000)"
    )
    page.set_viewport_size({"width": 1440, "height": min(int(height) + 40, 12000)})  # type: ignore[attr-defined]
    page.wait_for_timeout(800)  # type: ignore[attr-defined]  # charts re-layout to the new size
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 1440, "height": 1000})  # type: ignore[attr-defined]


def test_questionnaire_template_to_recommendation(app_url: str) -> None:
    """Landing page renders; a template goes in; the bandwidth is measured; a recommendation card appears."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            started = time.perf_counter()
            page.goto(app_url)
            expect(page.get_by_role("heading", name="Decision Lens")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Start from a template")).to_be_visible()
            first_paint = time.perf_counter() - started
            print(f"browser first paint of the landing page: {first_paint:.2f} s")

            click(page, "tpl-support")
            expect(page.get_by_text("① Data sensitivity")).to_be_visible(timeout=15_000)
            click(page, "tpl-phi")
            expect(page.get_by_text("Added “PHI summaries”")).to_be_visible(timeout=15_000)
            snap(page, ARTIFACTS / "workflows.png")

            # Measure the bandwidth so local options can be predicted on this (CPU) machine.
            click(page, "go-hardware")
            expect(page.get_by_role("heading", name="Hardware", exact=True)).to_be_visible(timeout=15_000)
            click(page, "hw-probe")
            expect(page.get_by_text("Measured host memory bandwidth")).to_be_visible(timeout=60_000)
            snap(page, ARTIFACTS / "hardware.png")

            page.get_by_test_id("stSidebarNav").get_by_text("Recommendations").click()
            expect(page.get_by_role("heading", name="Recommendations")).to_be_visible(timeout=15_000)
            expect(page.get_by_text("Seconds / accepted answer").first).to_be_visible(timeout=120_000)
            badges = (
                page.get_by_text(DECISIONS[0]).or_(page.get_by_text(DECISIONS[1])).or_(page.get_by_text(DECISIONS[2]))
            )
            expect(badges.first).to_be_visible()
            expect(page.get_by_text("Why, lens by lens").first).to_be_visible()
            expect(page.get_by_test_id("stException")).to_have_count(0)
            page.wait_for_timeout(1500)  # let the Vega charts finish drawing before the screenshot
            shot = ARTIFACTS / "recommendations.png"
            snap(page, shot)
        finally:
            browser.close()
    docs = REPO / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copyfile(shot, docs / "screenshot.png")


def test_calibration_runs_to_the_end_and_answers_survive_a_reload(short_suite_app_url: str) -> None:
    """A real quick calibration in the browser: the server stays up, and the workflows come back after a reload.

    The run is the short suite (5 requests on the real model): this test is about the browser session surviving a
    run to its end; the default quick suite's contents are pinned by the CLI test in test_calibrate_real.py.
    """
    app_url = short_suite_app_url
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(app_url)
            expect(page.get_by_text("Start from a template")).to_be_visible(timeout=30_000)
            click(page, "tpl-support")
            expect(page.get_by_text("① Data sensitivity")).to_be_visible(timeout=15_000)

            page.get_by_test_id("stSidebarNav").get_by_text("Calibrate").click()
            expect(page.get_by_role("heading", name="Calibrate")).to_be_visible(timeout=15_000)
            page.locator(".st-key-cal-probe label").first.click()  # the bandwidth probe is covered elsewhere
            click(page, "cal-start")
            expect(page.get_by_text("Calibration finished")).to_be_visible(timeout=600_000)
            expect(page.get_by_text(SHORT_SUITE_NAME).first).to_be_visible(timeout=15_000)
            expect(page.get_by_test_id("stException")).to_have_count(0)
            assert httpx.get(f"{app_url}/_stcore/health", timeout=5).text.strip() == "ok"

            page.goto(app_url)  # a new session (a reload or a restart): the autosave brings the workflow back
            expect(page.get_by_text("Restored your 1 workflow(s)")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("① Data sensitivity")).to_be_visible(timeout=15_000)
        finally:
            browser.close()
