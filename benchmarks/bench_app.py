"""App responsiveness: first paint of the landing page, the app's first recommendation on a fresh install,
and a recommendation refresh after one edit.

    python benchmarks/bench_app.py [--repeat 5] [--browser]

Goals: first paint <= 2 s; the app's first recommendation <= 5 s on a fresh install (a new ADVISOR_HOME: the
shipped predictor, no fit) and <= 1 s after an edit; an in-process refresh <= 0.5 s. State goes to a temp
ADVISOR_HOME unless ADVISOR_HOME is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIRST_PAINT_GOAL_S = 2.0
REFRESH_GOAL_S = 0.5
FIRST_RECOMMENDATION_GOAL_S = 5.0
APP_EDIT_GOAL_S = 1.0


def _app_session() -> None:
    """The real app's pages and navigation; a page named in session_state["_bench_goto"] is opened first
    (how the bench returns to the questionnaire inside one session, as a user does)."""
    import streamlit as st

    from advisor.ui import build_pages, page

    nav = st.navigation(build_pages())
    target = st.session_state.pop("_bench_goto", None)
    if target:
        st.switch_page(page(target))
    nav.run()


def first_recommendation_apptest(repeat: int) -> tuple[float, list[float]]:
    """In the app itself (AppTest, one session, this process's first Recommendations page): seconds from the
    click on "See recommendations" to the rendered cards; then, per repeat, back on the questionnaire one edit
    (one more template workflow) and the same click again."""
    from streamlit.testing.v1 import AppTest

    from advisor.ui import TEMPLATES

    names = list(TEMPLATES)
    at = AppTest.from_function(_app_session, default_timeout=120).run()
    for key in names[:2]:
        at.button(key=f"tpl-{key}").click().run()

    def see_recommendations() -> float:
        started = time.perf_counter()
        at.button(key="go-recommendations").click().run()
        elapsed = time.perf_counter() - started
        assert not at.exception and at.title[0].value == "Recommendations", "no recommendation page"
        assert at.session_state["dl_recommendation"][1]["workflows"], "no recommendation"
        return elapsed

    first = see_recommendations()
    edits = []
    for i in range(repeat):
        at.session_state["_bench_goto"] = "workflows"
        at.run()
        at.button(key=f"tpl-{names[(2 + i) % len(names)]}").click().run()
        edits.append(see_recommendations())
    return first, edits


def first_paint_apptest(repeat: int) -> tuple[float, float]:
    """Seconds for the first run of app.py (imports included) and the median of later runs."""
    from streamlit.testing.v1 import AppTest

    started = time.perf_counter()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    cold = time.perf_counter() - started
    assert at.title and at.title[0].value == "Decision Lens", "landing page did not render"
    warm = []
    for _ in range(repeat):
        started = time.perf_counter()
        AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
        warm.append(time.perf_counter() - started)
    return cold, statistics.median(warm)


def first_paint_browser() -> tuple[float, float] | None:
    """Headless Chromium on a fresh ADVISOR_HOME: seconds from navigation to the rendered landing heading, and
    from the click on "See recommendations" (two template workflows) to the first card's figures (None without
    Chromium)."""
    import subprocess

    import httpx

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        return None
    from playwright.sync_api import expect, sync_playwright

    from tests.conftest import free_port

    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    # Its own fresh ADVISOR_HOME: the AppTest figures below stay those of a fresh install too.
    env = {**os.environ, "ADVISOR_HOME": tempfile.mkdtemp(prefix="decision-lens-bench-browser-")}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).text.strip() == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
        args += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(chromium), args=args)
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}")
            expect(page.get_by_text("Start from a template")).to_be_visible(timeout=30_000)
            elapsed = time.perf_counter() - started
            for key in ("tpl-support", "tpl-phi"):
                page.locator(f".st-key-{key} button[data-testid^='stBaseButton']").first.click()
                page.wait_for_timeout(300)
            page.locator(".st-key-go-recommendations button[data-testid^='stBaseButton']").first.click()
            started = time.perf_counter()
            expect(page.get_by_text("Seconds / accepted answer").first).to_be_visible(timeout=120_000)
            recommendation = time.perf_counter() - started
            browser.close()
        return elapsed, recommendation
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def refresh(repeat: int) -> tuple[float, list[float]]:
    """Seconds for the first recommendation (fit or load of the predictor), then per refresh after one edit."""
    from advisor.api import recommend_profile
    from advisor.schemas import Profile
    from advisor.ui import TEMPLATES

    profile = Profile.model_validate({"workflows": [t["workflow"] for t in TEMPLATES.values()]})
    started = time.perf_counter()
    recommend_profile(profile)
    first = time.perf_counter() - started
    times = []
    for i in range(repeat):
        edited = profile.model_copy(deep=True)
        edited.workflows[0].latency_budget_s = 5.0 + i  # one field changed, as in the questionnaire
        started = time.perf_counter()
        result = recommend_profile(edited)
        times.append(time.perf_counter() - started)
        assert result["workflows"], "no recommendation"
    return first, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also time first paint in headless Chromium")
    args = parser.parse_args()
    if "ADVISOR_HOME" not in os.environ:
        os.environ["ADVISOR_HOME"] = tempfile.mkdtemp(prefix="decision-lens-bench-")
    print(f"ADVISOR_HOME={os.environ['ADVISOR_HOME']}")

    cold, warm = first_paint_apptest(args.repeat)
    verdict = "ok" if cold <= FIRST_PAINT_GOAL_S else "OVER GOAL"
    print(
        f"first paint, landing page (AppTest, cold process): {cold:.3f} s  [goal <= {FIRST_PAINT_GOAL_S} s: {verdict}]"
    )
    print(f"landing page rerun (AppTest, median of {args.repeat}):  {warm:.3f} s")
    if args.browser:
        timed = first_paint_browser()
        if timed is None:
            print("first paint in the browser: skipped (/usr/bin/chromium missing)")
        else:
            seconds, recommendation = timed
            verdict = "ok" if seconds <= FIRST_PAINT_GOAL_S else "OVER GOAL"
            print(
                f"first paint, landing page (Chromium):              {seconds:.3f} s  [goal <= {FIRST_PAINT_GOAL_S} s: {verdict}]"
            )
            verdict = "ok" if recommendation <= FIRST_RECOMMENDATION_GOAL_S else "OVER GOAL"
            print(
                f"the app's first recommendation (Chromium, its own fresh server, 2 workflows): {recommendation:.3f} s  "
                f"[goal <= {FIRST_RECOMMENDATION_GOAL_S} s: {verdict}]"
            )

    app_first, app_edits = first_recommendation_apptest(args.repeat)
    verdict = "ok" if app_first <= FIRST_RECOMMENDATION_GOAL_S else "OVER GOAL"
    print(
        f"the app's first recommendation (AppTest, fresh ADVISOR_HOME, 2 workflows): {app_first:.3f} s  "
        f"[goal <= {FIRST_RECOMMENDATION_GOAL_S} s: {verdict}]"
    )
    median = statistics.median(app_edits)
    verdict = "ok" if median <= APP_EDIT_GOAL_S else "OVER GOAL"
    print(
        f"the app's recommendation after one edit (one more workflow, same session, median of {args.repeat}): {median:.3f} s "
        f"(max {max(app_edits):.3f} s)  [goal <= {APP_EDIT_GOAL_S} s: {verdict}]"
    )

    first, times = refresh(args.repeat)
    median = statistics.median(times)
    verdict = "ok" if median <= REFRESH_GOAL_S else "OVER GOAL"
    print(f"first recommendation (predictor fit or disk load):  {first:.3f} s")
    print(
        f"recommendation refresh after one edit (5 workflows, median of {args.repeat}): {median:.3f} s "
        f"(max {max(times):.3f} s)  [goal <= {REFRESH_GOAL_S} s: {verdict}]"
    )


if __name__ == "__main__":
    main()
