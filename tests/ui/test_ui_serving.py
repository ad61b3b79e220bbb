"""Serving: this machine only by default; other machines only when asked, with their origins named."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("panel")

from explorer.errors import ExplorerInputError  # noqa: E402
from explorer.ui.serving import _quiet_handler, is_loopback, origins, serve  # noqa: E402


def test_loopback_and_origins():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert origins("127.0.0.1", 5006) == ["localhost:5006", "127.0.0.1:5006"]
    assert origins("0.0.0.0", 5006, ["lab.example:5006"])[-1] == "lab.example:5006"
    assert "192.168.1.20:8080" in origins("192.168.1.20", 8080)


def test_serve_refuses_a_taken_port_or_a_bad_one():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ExplorerInputError, match="cannot listen"):
            serve("127.0.0.1", taken.getsockname()[1])
    with pytest.raises(ExplorerInputError, match="--port"):
        serve("127.0.0.1", 70000)


def test_closed_websockets_are_not_tracebacks():
    class WebSocketClosedError(Exception):
        pass

    seen = []

    class Loop:
        def default_exception_handler(self, context):
            seen.append(context)

    _quiet_handler(Loop(), {"exception": WebSocketClosedError()})
    assert seen == []
    _quiet_handler(Loop(), {"exception": ValueError("real")})
    assert len(seen) == 1
