"""Browser-driven benchmark of the app (headless Chromium, as in the end-to-end test):

* server ready: ``panel serve apps/explorer.py`` started -> the app page answers (a session is built);
* page interactive: page requested -> the "Generate candidates" button is on the page;
* click -> 16 drawn: "Generate candidates" clicked (default model and steps, n = 16) -> all 16 candidates drawn
  in the 3D grid, on the page's own clock (``performance.now()`` at the click and when the last of the 16 views
  has been rendered); measured ``--repeats`` times in one page (the first is a fresh server's first click);
* click -> page settled: until the page's last main-thread task (> 50 ms) of that click ended (table, hull,
  large view and layout are done too);
* click -> seen by the driver: until selenium, polling every 50 ms, saw the 16 views drawn (a poll waits while
  the page is busy, so this is close to "settled").

    python benchmarks/app_browser.py [--n 16] [--repeats 2] [--out benchmarks/results/app_browser.json]

Timings depend on what else the machine is doing: the JSON records the load average and the device.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the headless-browser harness of the tests

from browser_harness import AppServer, Browser, browser_available  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--steps", type=int, default=None, help="default: the app's default (100)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "app_browser.json"))
    args = parser.parse_args()
    if not browser_available():
        print("needs /usr/bin/chromium and /usr/bin/chromedriver (bash scripts/setup.sh)", file=sys.stderr)
        return 2

    import panel
    import torch

    from explorer import default_model
    from explorer.ui.app import device_label
    from explorer.ui.generate import GeneratePanel

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="explorer-bench-"))
    server = AppServer(work / "session")
    browser = None
    result: dict = {}
    try:
        ready = server.wait_ready(300)
        print(f"server ready: {ready:.2f} s", file=sys.stderr, flush=True)
        browser = Browser(work / "downloads")
        start = time.perf_counter()
        browser.open(server.url)
        browser.wait_for("return window.__deep('button', 'Generate candidates', true).length > 0", 300)
        interactive = time.perf_counter() - start
        browser.set_input("Number", args.n)
        steps = args.steps or GeneratePanel.param.steps.default
        browser.set_input("Steps", steps)
        time.sleep(1.0)
        clicks, settled, polled, breakdowns = [], [], [], []
        for repeat in range(args.repeats):
            browser.set_input("Seed", repeat)  # new structures each time (the same ones would not be redrawn)
            time.sleep(0.5)
            browser.js("if (window.__explorer3d && window.__explorer3d.grid) window.__explorer3d.grid.drawn = 0;")
            browser.js("window.__longTasks = []; window.__clickAt = performance.now();"
                       "if (!window.__longTaskObserver) { window.__longTaskObserver = new PerformanceObserver("
                       "(list) => { for (const e of list.getEntries()) window.__longTasks.push("
                       "[Math.round(e.startTime - window.__clickAt), Math.round(e.duration)]) });"
                       "window.__longTaskObserver.observe({entryTypes: ['longtask']}); }")
            start = time.perf_counter()
            browser.click("button", "Generate candidates")
            outcome = browser.wait_for(
                "const s = (window.__explorer3d || {}).grid; if (s && s.drawn === arguments[0]) return 'drawn';"
                "const bad = window.__deep('div').map(e => e.textContent.trim()).filter(t => t.startsWith('✗ '));"
                "return bad.length ? bad[0] : null;", 900, 0.05, args.n)
            if outcome != "drawn":
                raise RuntimeError(f"the app reported an error: {outcome}")
            polled.append(round(time.perf_counter() - start, 3))
            # where the page spent the time: 3D items arrived / canvas built / views rendered (ms after the
            # click) and the main-thread tasks longer than 50 ms ([start ms after the click, duration ms])
            breakdowns.append(browser.js(
                "const t = window.__explorer3d.grid.timing, c = window.__clickAt;"
                "return {items_arrived_ms: Math.round(t.received - c), canvas_built_ms: Math.round(t.built - c),"
                "views_rendered_ms: Math.round(t.rendered - c), long_tasks_ms: window.__longTasks.slice(),"
                "settled_ms: Math.max(0, ...window.__longTasks.map(x => x[0] + x[1])),"
                "large_view_ms: (window.__explorer3d.large || {}).timing ? ["
                "Math.round(window.__explorer3d.large.timing.received - c),"
                "Math.round(window.__explorer3d.large.timing.rendered - c)] : null}"))
            clicks.append(round(breakdowns[-1]["views_rendered_ms"] / 1000, 3))
            settled.append(round(max(breakdowns[-1]["settled_ms"], breakdowns[-1]["views_rendered_ms"]) / 1000, 3))
            print(f"click -> {args.n} drawn: {clicks[-1]} s (page settled {settled[-1]} s, seen by the driver "
                  f"{polled[-1]} s)", file=sys.stderr, flush=True)
            print(f"  page timeline: {breakdowns[-1]}", file=sys.stderr, flush=True)
            browser.wait_for("return window.__deep('button', 'Generate candidates', true).length > 0", 60)
            time.sleep(1.0)
        ink = browser.canvas_ink("grid")
        prewarm_ms = browser.js("return (window.__explorer3d.grid || {}).prewarm_ms ?? null")
        result = {
            "benchmark": "app_browser",
            "command": "python benchmarks/app_browser.py " + " ".join(sys.argv[1:]),
            "server_ready_s": round(ready, 3),
            "page_interactive_s": round(interactive, 3),
            "click_to_drawn_s": clicks,
            "click_to_settled_s": settled,
            "click_to_seen_by_driver_s": polled,
            "click_page_timeline": breakdowns,
            "grid_prewarm_ms": prewarm_ms,
            "n": args.n,
            "steps": steps,
            "model": default_model(),
            "grid_ink_pixels": ink,
            "device": device_label(),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "torch": torch.__version__, "panel": panel.__version__,
                        "load_average_before": [round(x, 2) for x in load_before],
                        "load_average_after": [round(x, 2) for x in os.getloadavg()]},
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    finally:
        if browser is not None:
            browser.quit()
        server.stop()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
