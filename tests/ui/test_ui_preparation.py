"""Background preparation: tasks run in order per lane, report progress, stop on request; the page's status line
says what is still being prepared."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("panel")

from explorer.ui import preparation  # noqa: E402
from explorer.ui.preparation import LIBRARY, Preparation, PreparationStatus  # noqa: E402


def wait_until(condition, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.01)
    return condition()


def test_tasks_run_once_report_and_stop(monkeypatch):
    prep = Preparation()
    monkeypatch.setattr(preparation, "PREPARATION", prep)
    gate, runs = threading.Event(), []

    def slow(task):
        for i in range(1000):
            task.report(i, 1000, "mp_structures")
            gate.wait(0.01)
        runs.append("slow")

    prep.start(LIBRARY, "building the prototype library", slow, lane="library")
    quick = prep.start("model", "loading the model", lambda task: runs.append("quick"))
    assert prep.start("model", "again", lambda task: runs.append("twice")) is quick  # queued once only
    assert wait_until(lambda: quick.state == "done") and runs == ["quick"]  # not behind the library
    status = PreparationStatus()
    assert wait_until(lambda: prep.tasks[LIBRARY].done > 0)
    status.update()
    assert "Preparing — building the prototype library:" in status.line.object and status.stop_button.visible
    status.stop_button.clicks += 1  # Stop
    assert wait_until(lambda: prep.state(LIBRARY) == "stopped") and "slow" not in runs
    status.update()
    assert "Ready" in status.line.object and "prototype library stopped" in status.line.object
    assert not status.stop_button.visible
    failing = prep.start("references", "references", lambda task: 1 / 0)
    assert wait_until(lambda: failing.state == "failed") and "division by zero" in failing.error
