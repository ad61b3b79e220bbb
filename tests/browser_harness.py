"""Headless Chromium (Debian's chromium + chromium-driver, driven by selenium) against a `panel serve`d app.

Used by the end-to-end test and by benchmarks/app_browser.py. Panel renders widgets inside shadow roots, so
elements are found with a small script that walks every shadow root (``deep_find``)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

REPO = Path(__file__).resolve().parents[1]  # the repository checkout (apps/, node_modules/)
CHROMIUM = os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EXPLORER_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--enable-unsafe-swiftshader", "--window-size=1500,1100"]

DEEP_JS = """
window.__deep = window.__deep || function (selector, text, exact) {
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll(selector)) {
      const content = (el.textContent || '').trim();
      if (text === undefined || text === null || (exact ? content === text : content.includes(text))) found.push(el);
    }
    for (const el of root.querySelectorAll('*')) { if (el.shadowRoot) walk(el.shadowRoot); }
  };
  walk(document);
  return found;
};
"""


def browser_available() -> bool:
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """``explorer app`` (the README's command) on a free localhost port, in its own process."""

    def __init__(self, session_dir: str | os.PathLike, extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://localhost:{self.port}/explorer"
        env = dict(os.environ, EXPLORER_SESSION_DIR=str(session_dir), PYTHONUNBUFFERED="1", **(extra_env or {}))
        self.log = tempfile.NamedTemporaryFile("w+", prefix="explorer-app-", suffix=".log", delete=False)
        command = [sys.executable, "-m", "explorer.cli", "app", "--port", str(self.port)]
        self.started = time.perf_counter()
        # its own process group, so that stop() ends the server and anything it started
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from start until the app page answers 200."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"explorer app exited: {self.output()}")
            try:
                with urlopen(self.url, timeout=30) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started
            except (URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.25)
        raise TimeoutError(f"app not ready after {timeout} s: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-4000:]

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 30)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(grace)
                if sig == signal.SIGTERM:
                    os.killpg(self.process.pid, signal.SIGKILL)  # leftovers of the group, if any
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                pass
            break
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


class Browser:
    """A headless Chromium with a fresh profile, a download folder and the network log switched on."""

    def __init__(self, download_dir: str | os.PathLike, width: int = 1500, height: int = 1100):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="explorer-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--window-size={width},{height}")
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_experimental_option("prefs", {"download.default_directory": str(download_dir),
                                                  "download.prompt_for_download": False})
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_script_timeout(60)
        self.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow",
                                                                 "downloadPath": str(download_dir)})
        self.requests: list[str] = []

    def open(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args):
        return self.driver.execute_script(DEEP_JS + script, *args)

    def wait_for(self, script: str, timeout: float = 60, interval: float = 0.25, *args):
        """Poll a JS expression (``return ...``) until it is truthy; returns its value."""
        deadline = time.perf_counter() + timeout
        value = None
        while time.perf_counter() < deadline:
            value = self.js(script, *args)
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"timed out waiting for: {script} (last value {value!r})")

    def click(self, selector: str, text: str | None = None, exact: bool = True) -> None:
        """Click the first element matching ``selector`` whose text is ``text`` (or contains it)."""
        ok = self.js("const els = window.__deep(arguments[0], arguments[1], arguments[2]);"
                     "if (!els.length) return false; els[0].click(); return true;", selector, text, exact)
        if not ok:
            raise LookupError(f"no element {selector!r} with text {text!r}")

    def set_input(self, label: str, value) -> None:
        """Type into the input widget whose label contains ``label`` and commit it (change event)."""
        ok = self.js("""
            const label = arguments[0], value = String(arguments[1]);
            const labels = window.__deep('label', label);
            for (const l of labels) {
              const root = l.getRootNode();
              const input = root.querySelector('input');
              if (!input) continue;
              input.focus();
              input.value = value;
              input.dispatchEvent(new Event('input', {bubbles: true}));
              input.dispatchEvent(new Event('change', {bubbles: true}));
              input.dispatchEvent(new KeyboardEvent('keyup', {key: 'Enter', bubbles: true}));
              input.blur();
              return true;
            }
            return false;""", label, value)
        if not ok:
            raise LookupError(f"no input labelled {label!r}")

    def canvas_ink(self, view: str) -> int:
        """Number of non-white pixels drawn in a 3D view's WebGL canvas (0 = blank)."""
        return int(self.js("""
            const state = (window.__explorer3d || {})[arguments[0]];
            if (!state || !state.canvas || !state.canvas.width) return 0;
            const c = document.createElement('canvas');
            c.width = state.canvas.width; c.height = state.canvas.height;
            const ctx = c.getContext('2d');
            ctx.drawImage(state.canvas, 0, 0);
            const data = ctx.getImageData(0, 0, c.width, c.height).data;
            let ink = 0;
            for (let i = 0; i < data.length; i += 4) {
              if (data[i + 3] > 0 && (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235)) ink++;
            }
            return ink;""", view))

    def network_urls(self) -> list[str]:
        """Every URL the page requested so far (Chrome's performance log)."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
                params = message["params"]
                url = params.get("request", {}).get("url") or params.get("url", "")
                self.requests.append(url)
        return list(self.requests)

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]

    def screenshot(self, path: str | os.PathLike) -> None:
        self.driver.save_screenshot(str(path))

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def external_requests(urls: list[str]) -> list[str]:
    """URLs that leave this machine (anything but localhost / 127.0.0.1 over http(s)/ws)."""
    from urllib.parse import urlparse

    outside = []
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "chrome", "about", "chrome-extension", "devtools", ""):
            continue
        if parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
            outside.append(url)
    return outside
