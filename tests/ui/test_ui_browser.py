"""End to end in a real headless Chromium (Debian's chromium + chromium-driver, selenium): `panel serve` the
app on localhost, generate 4 candidates with a few steps, see them in the table and drawn in 3D, export a zip
that pymatgen parses back, upload a malformed CIF (clear error, the app keeps working), restart the server and
find the session restored — and no request ever leaves localhost."""

from __future__ import annotations

import io
import os
import time
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser_harness import AppServer, Browser, browser_available, external_requests

from explorer.ui.assets import threedmol_dir

if not (browser_available() and threedmol_dir() is not None):
    reason = "needs /usr/bin/chromium, /usr/bin/chromedriver and node_modules/3dmol: run `bash scripts/setup.sh`"
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)  # CI runs scripts/setup.sh first: a missing browser is a failure
    pytest.skip(reason, allow_module_level=True)

BAD_CIF = "data_broken\n_cell_length_a 3.0\n_cell_length_b oops\nloop_\n_atom_site_label\nX1\n"
NACL_POSCAR = """Na4 Cl4
1.0
5.64 0 0
0 5.64 0
0 0 5.64
Na Cl
4 4
direct
0 0 0
0 0.5 0.5
0.5 0 0.5
0.5 0.5 0
0.5 0.5 0.5
0.5 0 0
0 0.5 0
0 0 0.5
"""


def wait_for_file(folder: Path, pattern: str, timeout: float = 60) -> Path:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        done = [p for p in folder.glob(pattern) if not p.name.endswith(".crdownload")]
        if done and not list(folder.glob("*.crdownload")):
            return done[0]
        time.sleep(0.25)
    raise TimeoutError(f"no {pattern} in {folder}: {list(folder.iterdir())}")


def status_text(browser: Browser, fragment: str, timeout: float = 120) -> str:
    return browser.wait_for("return window.__deep('div', arguments[0]).map(e => e.textContent.trim())"
                            ".filter(t => t.length < 400)[0]", timeout, 0.25, fragment)


def report(server: AppServer, browser: Browser | None, screenshot: Path) -> None:
    """On failure: the server's log and a screenshot (shown by pytest with the captured output)."""
    print("---- panel serve log ----\n" + server.output())
    if browser is not None:
        try:
            browser.screenshot(screenshot)
            print(f"screenshot: {screenshot}\nbrowser console: {browser.console_errors()}")
        except Exception as exc:  # the browser itself may be the problem
            print(f"no screenshot: {exc}")


@contextmanager
def served_app(session: Path, downloads: Path, screenshot: Path):
    """(server, browser) with the app page open; on failure the server log and a screenshot are printed;
    both are closed at the end."""
    server = AppServer(session)
    browser = None
    try:
        server.wait_ready()
        browser = Browser(downloads)
        browser.open(server.url)
        yield server, browser
    except Exception:
        report(server, browser, screenshot)
        raise
    finally:
        if browser is not None:
            browser.quit()
        server.stop()


def table_rows(browser: Browser) -> int:
    return browser.js("return window.__deep('.tabulator-row').length")


def test_app_in_headless_chromium(tmp_path, tiny_data_dir):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    session = tmp_path / "session"
    with served_app(session, downloads, tmp_path / "failure-1.png") as (server, browser):
        browser.wait_for("return window.__deep('button', 'Generate candidates', true).length > 0", 90)
        assert "8 atoms in the cell" in status_text(browser, "atoms in the cell")
        # the formula is checked while typing; the periodic table adds elements
        browser.set_input("Formula", "TaXx2")
        assert "unknown element" in status_text(browser, "unknown element")
        browser.set_input("Formula", "TaWB6")
        browser.click("h3", "Periodic table (click to add)")  # expand the card (the click reaches its header)
        browser.wait_for("return window.__deep('div[title^=\"B (Z=\"]').length > 0", 60)
        browser.click('div[title^="B (Z="]', None)
        assert "9 atoms in the cell" in status_text(browser, "9 atoms in the cell")
        browser.set_input("Formula", "TaWB6")
        assert "8 atoms in the cell" in status_text(browser, "8 atoms in the cell")

        # a small generation: 5 steps, 4 candidates
        browser.set_input("Steps", 5)
        browser.set_input("Number", 4)
        time.sleep(0.5)
        browser.click("button", "Generate candidates")
        drawn = browser.wait_for("const s = (window.__explorer3d || {}).grid; return s && s.drawn", 180)
        assert drawn == 4
        browser.wait_for("return window.__deep('.tabulator-row').length === 4", 120)
        assert "4 candidates" in status_text(browser, "candidates in")
        time.sleep(1.0)  # let WebGL finish the frame
        assert browser.canvas_ink("grid") > 2000, "the 3D grid canvas is blank"
        browser.wait_for("const s = (window.__explorer3d || {}).large; return s && s.drawn", 120)
        assert browser.canvas_ink("large") > 2000, "the large 3D view is blank"

        # selection: a click on a grid cell, then on a table row, shows that candidate in the large view
        browser.js("""
            const stage = window.__explorer3d.grid.root.querySelector('.x3d-stage');
            const box = stage.getBoundingClientRect();
            const at = {clientX: box.left + box.width * 0.75, clientY: box.top + box.height * 0.25, bubbles: true};
            stage.dispatchEvent(new PointerEvent('pointerdown', at));
            stage.dispatchEvent(new PointerEvent('pointerup', at));""")
        assert "Candidate #1" in status_text(browser, "Candidate #1")  # 2×2 grid: top right = #1
        browser.js("window.__deep('.tabulator-row')[3].querySelectorAll('.tabulator-cell')[2].click()")
        assert "Candidate #3" in status_text(browser, "Candidate #3")

        # export all as a zip of CIFs that pymatgen reads back
        browser.click("a", "Download")
        archive = wait_for_file(downloads, "*.zip")
        from pymatgen.core import Structure

        with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as bundle:
            names = bundle.namelist()
            assert len(names) == 4 and all(n.endswith(".cif") for n in names)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = [Structure.from_str(bundle.read(n).decode(), fmt="cif") for n in names]
        assert all(s.composition.reduced_formula == "TaB6W" for s in parsed)

        # Modify mode: a malformed CIF gives a clear error and the app keeps working
        browser.click("button", "Modify")
        bad = tmp_path / "broken.cif"
        bad.write_text(BAD_CIF)
        upload = browser.js("return window.__deep('input[type=file]')[0]")
        upload.send_keys(str(bad))
        assert "malformed CIF" in status_text(browser, "broken.cif:")
        good = tmp_path / "POSCAR"
        good.write_text(NACL_POSCAR)
        upload.send_keys(str(good))
        assert "NaCl, 8 atoms" in status_text(browser, "POSCAR:")
        browser.wait_for("const s = (window.__explorer3d || {}).original; return s && s.drawn", 120)
        browser.click("button", "Modify structure")
        outcome = browser.wait_for("return window.__deep('div').map(e => e.textContent.trim()).filter("
                                   "t => t.length < 400 && /modification model|modified candidates/.test(t))[0]", 300)
        assert "modified candidates" in outcome, outcome
        browser.click("button", "Generate")
        browser.wait_for("return window.__deep('button', 'Generate candidates', true).length > 0", 60)

        urls = browser.network_urls()
        assert any("3dmol/3Dmol-min.js" in u for u in urls), "3Dmol.js not loaded from the local static route"
        assert external_requests(urls) == []
        errors = [e for e in browser.console_errors() if "favicon" not in e]
        assert errors == []

    # restart: the autosaved session comes back (the last results: Modify's 8 candidates)
    assert (session / "session.json").is_file()
    with served_app(session, downloads, tmp_path / "failure-2.png") as (server, browser):
        browser.wait_for("return window.__deep('.tabulator-row').length === 8", 90)
        assert "restored the session" in status_text(browser, "restored the session")
        assert browser.wait_for("const s = (window.__explorer3d || {}).grid; return s && s.drawn", 120) == 8
        assert external_requests(browser.network_urls()) == []


def test_hull_html_opens_offline(tmp_path):
    """What `explorer hull` / `explorer screen` write opens from disk with nothing fetched from elsewhere."""
    from explorer.relax import hull_analysis, save_hull

    analysis = hull_analysis([("candidate", "TaB", -0.5)], "Ta-B", "elements")
    html = Path(save_hull(analysis, tmp_path / "hull")["html"])
    browser = Browser(tmp_path / "downloads")
    try:
        browser.open(html.as_uri())
        assert browser.wait_for("return window.__deep('canvas').length > 0", 60)
        urls = [u for u in browser.network_urls() if u != html.as_uri()]
        assert external_requests(urls) == [] and browser.console_errors() == []
    finally:
        browser.quit()
