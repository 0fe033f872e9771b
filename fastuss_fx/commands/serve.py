"""``fastuss serve``: start the local stem mixer (a web app) and print its URL.

It serves until SIGINT (Ctrl+C), SIGTERM or SIGHUP; each stops it the same way, removing the
temporary work folder.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from fastuss_fx.commands._common import add_untrained_arg

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="local web app: separate a file and audition its stems in a mixer")
    parser.add_argument(
        "folder", nargs="?", metavar="FOLDER", help="folder whose audio files the page may open (default: uploads only)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s); any other needs the printed token"
    )
    parser.add_argument("--port", type=int, default=8765, help="port (default: %(default)s; 0 picks a free one)")
    parser.add_argument("--token", help="access token (default: a random one when --host is not loopback)")
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="also answer requests for this Host name (e.g. an SSH tunnel's localhost:9000); "
        "other names are refused against DNS rebinding (repeatable)",
    )
    parser.add_argument(
        "--work",
        metavar="DIR",
        help="folder for uploads, stems and exports (default: a temporary one, removed at exit)",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=200.0, help="largest upload in MB (default: %(default)s)"
    )
    parser.add_argument("--model", help="override the presets' model variant")
    parser.add_argument(
        "--engine",
        choices=("onnx", "onnx-int8", "torch"),
        default="onnx",
        help="separation engine (default: %(default)s)",
    )
    add_untrained_arg(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fastuss_fx.serve import ServeConfig, make_server

    folder = Path(args.folder) if args.folder else None
    if folder is not None and not folder.is_dir():
        raise NotADirectoryError(f"FOLDER {folder} is not a folder")
    if args.max_upload_mb <= 0:
        raise ValueError("--max-upload-mb must be positive")
    config = ServeConfig(
        folder=folder,
        work=Path(args.work) if args.work else None,
        host=args.host,
        port=args.port,
        token=args.token,
        allowed_hosts=tuple(args.allow_host),
        max_upload_bytes=int(args.max_upload_mb * 1e6),
        engine=args.engine,
        model=args.model,
        allow_untrained=args.allow_untrained,
    )
    try:
        server = make_server(config)
    except OSError as err:
        raise PermissionError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    print(f"fastuss serve: open {server.url()}  (Ctrl+C stops)", flush=True)
    signum = serve_until_stopped(server)
    if server.app.jobs.busy():
        # a separation inside native code (onnxruntime/torch) cannot be interrupted; leave without
        # waiting for it (the work folder is already cleaned up)
        print("fastuss serve: stopped while a job ran", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(128 + (signum or signal.SIGINT))
    return 0


class Stop(Exception):
    """A stop signal arrived."""


def serve_until_stopped(server: Any) -> int:
    """Serve until a signal in ``STOP_SIGNALS``, then ``server.close()``; the signal's number (0: none).

    Without this, SIGTERM (``kill``, systemd, a container stop) ends the process at once and leaves the
    temporary work folder behind; SIGINT would raise KeyboardInterrupt wherever the main thread is.
    """
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        for s in STOP_SIGNALS:  # one stop is enough: a second signal must not cut the clean-up short
            signal.signal(s, signal.SIG_IGN)
        received.append(signum)
        raise Stop

    previous = {}
    try:
        for s in STOP_SIGNALS:
            previous[s] = signal.signal(s, stop)
        server.serve_forever()
    except Stop:
        pass
    finally:
        server.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return received[0] if received else 0
