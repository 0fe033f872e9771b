"""The mixer inline in a notebook: ``mixer(stems, rate)`` shows stems from ``FasTUSS.separate``.

It starts one ``fastuss serve`` server on 127.0.0.1 in a background thread (kept for the kernel's
life), registers the stems as a finished job and returns an IPython ``IFrame`` onto the page::

    stems = fx.separate(audio, rate)
    fastuss_fx.serve.notebook.mixer(stems, rate)
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import numpy as np

from fastuss_fx.serve.app import ServeConfig, Server, make_server

_server: Server | None = None
_lock = threading.Lock()


def server() -> Server:
    """The notebook's server, started on first use (a free port on 127.0.0.1, a temporary work folder)."""
    global _server
    with _lock:
        if _server is None:
            _server = make_server(ServeConfig(port=0))
            atexit.register(_server.app.close)  # removes the temporary work folder
            threading.Thread(target=_server.serve_forever, name="fastuss-notebook-server", daemon=True).start()
        return _server


def mixer(stems: dict[str, np.ndarray], rate: float, original: np.ndarray | None = None, height: int = 520) -> Any:
    """An ``IFrame`` with the stem mixer for ``stems`` (``(C, N)`` or ``(N,)`` arrays) at ``rate`` Hz.

    ``original`` (the input) is what the A/B button compares against; by default the stems' sum.
    """
    from IPython.display import IFrame

    srv = server()
    job = srv.app.jobs.add_result(stems, rate, original)
    return IFrame(f"{srv.url()}?job={job.id}", width="100%", height=height)
