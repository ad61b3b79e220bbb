"""Serving the app: one page per browser session, safe by default.

``explorer app`` (:func:`serve`) listens on this machine only (127.0.0.1) and accepts pages from
``localhost:<port>`` / ``127.0.0.1:<port>``. Serving to other machines is a choice made out loud:
``explorer app --address 0.0.0.0 --allow-origin myhost.lab:5006`` — then each visitor still gets a session of
their own (``?session=<random id>``), and no page lists or opens another visitor's sessions. Sessions of closed
pages are ended within a few seconds, and their jobs with them.

``panel serve apps/explorer.py`` runs the same :func:`page`; add ``--address 127.0.0.1`` there yourself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket

LOOPBACK = ("127.0.0.1", "localhost", "::1")
DISCONNECT_NOTE = ("The connection to the explorer server was lost: nothing you do here reaches it now. Reload the "
                   "page once the server runs again (your session is saved).")


def extension(**kwargs) -> None:
    """Load what the components need in the browser (Tabulator, HoloViews' Bokeh backend) and the note shown
    when the server connection is lost."""
    import holoviews as hv
    import panel as pn

    kwargs.setdefault("disconnect_notification", DISCONNECT_NOTE)
    pn.extension("tabulator", notifications=True, **kwargs)
    hv.extension("bokeh", logo=False)


def page():
    """The page of one browser session (a new :class:`~explorer.ui.app.ExplorerApp` each time)."""
    from .app import ExplorerApp

    extension()
    quiet_closed_websockets()
    return ExplorerApp().template()


def _quiet_handler(loop, context) -> None:
    """The event loop's exception handler: a websocket the browser already closed is not an error worth a
    traceback (a page closed right after a click); anything else goes to the default handler."""
    exc = context.get("exception")
    if exc is not None and type(exc).__name__ in ("WebSocketClosedError", "StreamClosedError"):
        return
    loop.default_exception_handler(context)


def quiet_closed_websockets() -> None:
    """Install :func:`_quiet_handler` on the running event loop (once)."""
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        return
    if loop.get_exception_handler() is not _quiet_handler:
        loop.set_exception_handler(_quiet_handler)


def is_loopback(address: str) -> bool:
    if address in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def origins(address: str, port: int, allowed=()) -> list[str]:
    """The page origins the websocket accepts: this machine's, plus ``allowed`` (HOST:PORT each)."""
    own = [f"localhost:{port}", f"127.0.0.1:{port}"]
    if not is_loopback(address) and address not in ("0.0.0.0", "::", ""):
        own.append(f"{address}:{port}")
    return list(dict.fromkeys(own + [str(a) for a in allowed]))


def port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def serve(address: str = "127.0.0.1", port: int = 5006, allow_origin=(), show: bool = False) -> None:
    """Serve the app at ``http://<address>:<port>/explorer`` until interrupted."""
    import panel as pn

    from ..errors import ExplorerInputError
    from .assets import STATIC_ROUTE, threedmol_dir

    if not 0 < int(port) < 65536:
        raise ExplorerInputError(f"--port must be 1..65535, got {port}")
    if not port_free(address, int(port)):
        raise ExplorerInputError(f"cannot listen on {address}:{port} (in use, or not an address of this machine)")
    shared = not is_loopback(address)
    os.environ["EXPLORER_SHARED"] = "1" if shared else "0"
    static = threedmol_dir()
    where = "other machines too (each visitor in a session of their own)" if shared else "this machine only"
    print(f"explorer app: http://{'localhost' if not shared else address}:{port}/explorer — served to {where}; "
          "Ctrl-C stops it", flush=True)
    if static is None:
        print("explorer app: 3Dmol.js is missing (bash scripts/setup.sh): the 3D views stay empty", flush=True)
    pn.serve({"explorer": page}, address=address, port=int(port), websocket_origin=origins(address, port,
             allow_origin), static_dirs={STATIC_ROUTE: str(static)} if static else {}, show=show,
             title="Crystal explorer", verbose=False, check_unused_sessions_milliseconds=1000,
             unused_session_lifetime_milliseconds=3000)
