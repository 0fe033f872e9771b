"""The HTTP side of ``fastuss serve``: a small JSON API and the mixer page, on the stdlib server.

The routes, and what each answers, are listed in the README ("HTTP routes"); the work behind each
is ``api.App``'s. Every request passes ``guard.refusal`` first (the server's own Host names only; no
other site's Origin), then the token where there is one (``?token=`` or ``X-Token`` on ``/api/``).
Uploads over ``max_upload_bytes`` are refused from their Content-Length, before they are read (and
drained, so the page gets the message); files (stems, exports) are sent in chunks, never read whole.
A client that goes away mid-request (a closed browser) ends only its own connection's thread: a
body cut short stores nothing, and a connection idle for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import mimetypes
import os
import re
import shutil
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastuss_fx.prompts import MAX_PROMPTS, PROMPTS
from fastuss_fx.serve.api import App, ServeConfig, static_files
from fastuss_fx.serve.errors import HTTPError, public_message
from fastuss_fx.serve.guard import own_hosts, refusal

__all__ = ["App", "HTTPError", "Handler", "ServeConfig", "Server", "make_server"]

logger = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{16}$")
CHUNK_BYTES = 1 << 18
"""Files are sent in pieces of this size: a request holds one piece in memory, not the file."""


class Handler(BaseHTTPRequestHandler):
    """Routes requests to ``server.app``; every error is a JSON ``{"error": ...}``."""

    server_version = "fastuss-serve"
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> App:
        return self.server.app  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.app.config.idle_timeout)  # a silent client frees its thread

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:  # no route takes these; answered (405) after the same checks as POST
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        try:
            self._answer(method)
        except (ConnectionError, TimeoutError) as err:  # the client went away: nobody to answer
            self.close_connection = True
            logger.debug("%s went away during %s %s: %s", self.address_string(), method, self.path, err)

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self._unread = self._content_length()
        try:
            self._check_origin_and_host(method, url.path)
            if url.path.startswith("/api/"):  # the page and its script hold nothing private; all data is under /api/
                self._check_token(query)
            self._route(method, url.path)
        except HTTPError as err:
            self._drain()
            self._json({"error": str(err)}, err.status)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as err:  # a bug or an OS error answers 500 (without server paths); the server keeps serving
            logger.exception("request %s %s failed", method, url.path)
            self._drain()
            self._json({"error": f"server error: {public_message(err)}"}, 500)
        self._drain()  # a body no route read (e.g. a cancel's "{}") must not be parsed as the next request

    def _check_origin_and_host(self, method: str, path: str) -> None:
        reason = refusal(self.headers.get("Host"), self.headers.get("Origin"), self.server.hosts)  # type: ignore[attr-defined]
        if reason is not None:
            logger.warning("refused %s %s from %s: %s", method, path, self.address_string(), reason)
            raise HTTPError(403, reason)

    def _check_token(self, query: dict[str, list[str]]) -> None:
        token = self.app.config.token
        if token is None:
            return
        given = self.headers.get("X-Token") or (query.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPError(403, "missing or wrong token; open the URL printed by `fastuss serve`")

    def _route(self, method: str, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        app = self.app
        if method == "GET" and parts in ([], ["index.html"]):
            return self._file(static_files()["index.html"].read_bytes(), "text/html; charset=utf-8")
        if method == "GET" and len(parts) == 2 and parts[0] == "static":
            found = static_files().get(parts[1])
            if found is None:
                raise HTTPError(404, "not found")
            kind = mimetypes.guess_type(parts[1])[0] or "application/octet-stream"
            return self._file(found.read_bytes(), kind)
        if parts[:1] != ["api"]:
            raise HTTPError(404, "not found")
        api = parts[1:]
        if method == "GET" and api == ["config"]:
            return self._json(
                {
                    "max_upload_bytes": app.config.max_upload_bytes,
                    "folder": app.config.folder is not None,
                    "prompts": list(PROMPTS),
                    "max_prompts": MAX_PROMPTS,
                }
            )
        if method == "GET" and api == ["presets"]:
            return self._json(app.presets())
        if method == "POST" and api == ["presets"]:
            return self._json(app.save_preset(self._json_body()))
        if method == "GET" and len(api) == 2 and api[0] == "presets" and api[1].endswith(".yaml"):
            with app.lock:
                preset_file = app.saved_presets.get(api[1][: -len(".yaml")])
            if preset_file is None:
                raise HTTPError(404, "no such saved preset")
            return self._send_path(preset_file, "application/yaml", download=preset_file.name)
        if method == "GET" and api == ["files"]:
            return self._json(app.files())
        if method == "POST" and api == ["upload"]:
            return self._json(app.upload(self._body(app.config.max_upload_bytes), self._upload_name()))
        if method == "POST" and api == ["jobs"]:
            return self._json(app.submit(self._json_body()))
        if len(api) >= 2 and api[0] == "jobs" and JOB_ID.match(api[1]):
            job = app.job(api[1])
            if method == "GET" and len(api) == 2:
                return self._json(job.to_dict())
            if method == "POST" and api[2:] == ["cancel"]:
                return self._json(app.jobs.cancel(job.id).to_dict())
            if method == "POST" and api[2:] == ["export"]:
                return self._json(app.export(job.id, self._json_body()))
            if method == "POST" and api[2:] == ["export-stems"]:
                return self._json(app.export_stems(job.id, self._json_body()))
            if method == "GET" and len(api) == 4 and api[2] == "audio" and api[3].endswith(".wav"):
                try:
                    stem_file = job.stem_path(api[3][: -len(".wav")])
                except KeyError:
                    raise HTTPError(404, f"job {job.id} has no stem {api[3]!r} (yet)") from None
                return self._send_path(stem_file, "audio/wav")
            if method == "GET" and len(api) == 4 and api[2] == "exports":
                export_file = app.export_file(job.id, api[3])
                kind = mimetypes.guess_type(export_file.name)[0] or "application/octet-stream"
                return self._send_path(export_file, kind, download=export_file.name)
        raise HTTPError(404 if method == "GET" else 405, f"no route {method} {path}")

    # -- bodies and answers ----------------------------------------------------------------------

    def _upload_name(self) -> str:
        name = self.headers.get("X-Filename", "")
        return os.path.basename(name.replace("\\", "/"))[:200]  # shown to the user only

    def _content_length(self) -> int | None:
        """The body's announced length (0 without one on GET), None when it is missing or malformed."""
        given = self.headers.get("Content-Length")
        if given is None and self.headers.get("Transfer-Encoding") is None:
            return 0
        try:
            length = int(given or "")
        except ValueError:
            return None
        return length if length >= 0 else None

    def _body(self, limit: int) -> bytes:
        length, self._unread = self._unread, 0
        if length is None or (length == 0 and self.headers.get("Content-Length") is None):
            self.close_connection = True  # whatever follows the head cannot be told from the next request
            raise HTTPError(411, "the request needs a Content-Length")
        if length > limit:
            self._discard(length)
            raise HTTPError(413, f"the file is too large: {length / 1e6:.1f} MB, the limit is {limit / 1e6:.1f} MB")
        body = self.rfile.read(length)
        if len(body) < length:  # the client closed its side early: keep nothing of it
            self.close_connection = True
            raise HTTPError(400, f"the request was cut short: {len(body)} of {length} bytes arrived")
        return body

    def _drain(self) -> None:
        """Drop a body no route read (a refused or unrouted request): up to 1 MB, else close the connection."""
        length, self._unread = self._unread, 0
        if length is None:
            self.close_connection = True
        elif length:
            self._discard(length, most=1 << 20)

    def _discard(self, length: int, most: int = 1 << 30) -> None:
        """Read and drop a refused body (so the client sees the answer, not a broken pipe); past
        ``most`` bytes the connection is closed instead."""
        if length > most:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                break
            length -= len(chunk)

    def _json_body(self) -> dict[str, Any]:
        raw = self._body(1 << 20)
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise HTTPError(400, "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise HTTPError(400, "the request body must be a JSON object")
        return data

    def _json(self, data: Any, status: int = 200) -> None:
        self._file(json.dumps(data).encode(), "application/json", status=status)

    def _file(self, body: bytes, kind: str, status: int = 200, download: str | None = None) -> None:
        self._head(status, kind, len(body), download)
        self.wfile.write(body)

    def _send_path(self, path: Path, kind: str, download: str | None = None) -> None:
        """Send a file in ``CHUNK_BYTES`` pieces (a 1-GB stem takes no more memory than a small one)."""
        try:
            f = open(path, "rb")  # noqa: SIM115 -- closed below; opened first so a missing file is still a 404
        except FileNotFoundError:
            raise HTTPError(404, f"{path.name} is gone (the server keeps its most recently used jobs)") from None
        with f:
            self._head(200, kind, os.fstat(f.fileno()).st_size, download)
            try:
                shutil.copyfileobj(f, self.wfile, CHUNK_BYTES)
            except (ConnectionError, TimeoutError):
                raise
            except OSError:  # the head is sent: no error answer can follow, so end the connection
                logger.exception("sending %s failed", path)
                self.close_connection = True

    def _head(self, status: int, kind: str, length: int, download: str | None = None) -> None:
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        if download:
            self.send_header("Content-Disposition", f'attachment; filename="{download}"')
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()


class Server(ThreadingHTTPServer):
    """A threading HTTP server holding one ``App``; ``close()`` stops jobs and removes a temporary work folder.

    ``hosts`` are the Host names it answers (``guard.own_hosts``; None: any, for a wildcard bind).
    """

    daemon_threads = True

    def __init__(self, config: ServeConfig) -> None:
        super().__init__((config.host, config.port), Handler)  # bind first: a busy port leaves no work folder
        try:
            self.hosts = own_hosts(config.host, self.server_address[1], config.allowed_hosts)
            self.app = App(config)
        except BaseException:
            self.server_close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone between requests is routine (debug log); anything else is logged with its traceback."""
        err = sys.exc_info()[1]
        if isinstance(err, (ConnectionError, TimeoutError)):
            logger.debug("%s went away: %s", client_address, err)
        else:
            logger.exception("connection from %s failed", client_address)

    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        host = f"[{host}]" if ":" in host else host
        token = self.app.config.token
        return f"http://{host}:{port}/" + (f"?token={token}" if token else "")

    def close(self) -> None:
        """Release the socket, jobs and work folder (``shutdown()`` first if ``serve_forever`` runs in a thread)."""
        self.server_close()
        self.app.close()


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def make_server(config: ServeConfig) -> Server:
    """Build (not start) a server; a non-loopback host without a token gets a fresh random one.

    ``config`` is not changed: the server holds a copy (``server.app.config``, with the token it uses).
    """
    import secrets

    if not is_loopback(config.host) and not config.token:
        config = dataclasses.replace(config, token=secrets.token_urlsafe(16))
    else:
        config = dataclasses.replace(config)
    return Server(config)
