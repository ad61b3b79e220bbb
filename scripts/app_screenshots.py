"""Screenshots of the app for the README (docs/app-*.png), taken with headless Chromium like the browser test.

    python scripts/app_screenshots.py [--n 16] [--steps 100] [--relax 4] [--relax-steps 60] [--widths 1366 1920]

For each window width W (a laptop's 1366 px and a desktop's 1920 px; each in a session of its own):
1. docs/app-generate-W.png: 16 TaWB6 candidates in the table, the 3D grid, the selected one, the hull;
2. docs/app-relax-W.png: after relaxing the first ``--relax`` candidates (the points moved on the hull);
3. docs/app-modify-W.png: Modify mode: an uploaded POSCAR (NaCl), target space group 221 (``--target``), and its
   modified candidates (known prototypes first, then model samples, all relaxed). ``--only-modify``: this one only.
Images are shrunk and palette-quantised so that they stay small in git.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the headless-browser harness of the tests

from browser_harness import AppServer, Browser  # noqa: E402

from explorer.ui.session import SessionStore  # noqa: E402

NACL_POSCAR = "Na4 Cl4\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\nNa Cl\n4 4\ndirect\n" + "".join(
    f"{x} {y} {z}\n" for x, y, z in [(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0), (0.5, 0.5, 0.5),
                                     (0.5, 0, 0), (0, 0.5, 0), (0, 0, 0.5)])


def shrink(source: Path, target: Path, width: int = 1200) -> None:
    from PIL import Image

    image = Image.open(source).convert("RGB")
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    print(f"{target}: {target.stat().st_size / 1024:.0f} KiB")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--relax", type=int, default=4, help="relax this many candidates for the second picture")
    parser.add_argument("--relax-steps", type=int, default=60)
    parser.add_argument("--out", default=str(REPO / "docs"))
    parser.add_argument("--only-modify", action="store_true", help="take docs/app-modify.png only")
    parser.add_argument("--target", type=int, default=221, help="target space group of the modify picture")
    parser.add_argument("--widths", type=int, nargs="+", default=[1366, 1920], help="browser window widths (px)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="explorer-shots-"))
    sessions = work / "sessions"
    for width in args.widths:
        SessionStore(sessions, f"shots-{width}").save({"target_spacegroup": args.target}, [])
    server = AppServer(sessions)
    try:
        server.wait_ready(300)
        for width in args.widths:
            browser = Browser(work / "downloads", width=width, height=1250)
            try:
                browser.open(f"{server.url}?session=shots-{width}")
                browser.wait_for("return window.__deep('button', 'Generate candidates', true).length > 0", 300)
                if not args.only_modify:
                    take_generate_and_relax(browser, args, work, out, width)
                take_modify(browser, work, out, width)
            finally:
                browser.quit()
    finally:
        server.stop()
    return 0


def take_generate_and_relax(browser, args, work: Path, out: Path, width: int) -> None:
    browser.set_input("Number", args.n)
    browser.set_input("Steps", args.steps)
    time.sleep(1)
    browser.click("button", "Generate candidates")
    browser.wait_for("const s = (window.__explorer3d || {}).grid; return s && s.drawn === arguments[0]", 900,
                     0.25, args.n)
    time.sleep(4)  # novelty check, hull, WebGL frames
    browser.screenshot(work / "generate.png")
    shrink(work / "generate.png", out / f"app-generate-{width}.png", width)

    # relax the first few candidates (checkbox column of the table)
    for i in range(args.relax):
        browser.js("const boxes = window.__deep('.tabulator-row input[type=checkbox]');"
                   "if (boxes[arguments[0]]) boxes[arguments[0]].click();", i)
        time.sleep(0.3)
    browser.set_input("max steps", args.relax_steps)
    time.sleep(1)
    browser.click("button", "Relax")
    finished = r"return window.__deep('div', 'relaxed ').some(e => /relaxed \d+\/\d+ in/.test(e.textContent))"
    browser.wait_for(finished, 1800, 1.0)
    time.sleep(3)
    browser.screenshot(work / "relax.png")
    shrink(work / "relax.png", out / f"app-relax-{width}.png", width)


def take_modify(browser, work: Path, out: Path, width: int) -> None:
    browser.click("button", "Modify")
    poscar = work / "POSCAR"
    poscar.write_text(NACL_POSCAR)
    browser.js("return window.__deep('input[type=file]')[0]").send_keys(str(poscar))
    browser.wait_for("const s = (window.__explorer3d || {}).original; return s && s.drawn", 60)
    browser.set_input("Steps", 20)
    time.sleep(0.5)
    browser.click("button", "Modify structure")
    browser.wait_for("return window.__deep('div').some(e => /modified candidates|modification model/"
                     ".test(e.textContent) && e.textContent.length < 400)", 600, 0.5)
    time.sleep(4)
    browser.screenshot(work / "modify.png")
    shrink(work / "modify.png", out / f"app-modify-{width}.png", width)


if __name__ == "__main__":
    raise SystemExit(main())
