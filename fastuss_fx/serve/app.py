"""The HTTP side of ``fastuss serve``: a small JSON API and the mixer page, on the stdlib server.

Routes (all JSON unless noted; with a token, every ``/api/`` request carries ``?token=`` or ``X-Token``):

- ``GET /`` the page; ``GET /static/NAME`` its script and style (package files, no CDN).
- ``GET /api/presets`` (shipped and saved, with YAML); ``POST /api/presets`` ``{"yaml"}`` validates and
  saves one (``GET /api/presets/NAME.yaml`` gives the file for ``fastuss separate -p``).
- ``GET /api/files`` (audio files directly in FOLDER); ``GET /api/config`` (the upload limit, the
  prompt vocabulary).
- ``POST /api/upload`` raw file bytes (``X-Filename`` is only shown, never a path) -> ``{"file": id}``.
- ``POST /api/jobs`` ``{"file"|"pick", "preset"|"prompts", "mode"}`` -> job (``prompts``: a list such
  as ``["speech", "sfx"]``, checked by the preset schema); ``GET /api/jobs/ID`` (``progress`` 0-1);
  ``POST /api/jobs/ID/cancel``.
- ``GET /api/jobs/ID/audio/NAME.wav`` a stem or ``original`` (WAV).
- ``POST /api/jobs/ID/export`` ``{"gains": {stem: linear}, "format": "wav"|"flac"}`` -> ``{"url"}``;
  ``POST /api/jobs/ID/export-stems`` ``{"format"}`` -> ``{"files": [{"url", "name"}]}``;
  ``GET /api/exports/NAME`` the file.

The work behind each route is ``api.App``'s; uploads over ``max_upload_bytes`` are refused from
their Content-Length, before they are read (and drained, so the page gets the message). A client
that goes away mid-request (a closed browser) ends only its own connection's thread: a body cut
short stores nothing, and a connection idle for ``idle_timeout`` seconds is closed.
"""

from __future__ import annotations

import hmac
import json
import logging
import mimetypes
import os
import re
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastuss_fx.prompts import MAX_PROMPTS, PROMPTS
from fastuss_fx.serve.api import App, HTTPError, ServeConfig, static_files

__all__ = ["App", "HTTPError", "Handler", "ServeConfig", "Server", "make_server"]

logger = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{16}$")


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

    def _handle(self, method: str) -> None:
        try:
            self._answer(method)
        except (ConnectionError, TimeoutError) as err:  # the client went away: nobody to answer
            self.close_connection = True
            logger.debug("%s went away during %s %s: %s", self.address_string(), method, self.path, err)

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            if url.path.startswith("/api/"):  # the page and its script hold nothing private; all data is under /api/
                self._check_token(query)
            self._route(method, url.path)
        except HTTPError as err:
            self._json({"error": str(err)}, err.status)
        except (ConnectionError, TimeoutError):
            raise
        except Exception as err:  # a bug or an OS error answers 500; the server keeps serving
            logger.exception("request %s %s failed", method, url.path)
            self._json({"error": f"server error: {err}"}, 500)

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
            return self._file(preset_file.read_bytes(), "application/yaml", download=preset_file.name)
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
                return self._file(stem_file.read_bytes(), "audio/wav")
        if method == "GET" and len(api) == 2 and api[0] == "exports":
            with app.lock:
                export_file = app.exports.get(api[1])
            if export_file is None:
                raise HTTPError(404, "no such export")
            kind = mimetypes.guess_type(export_file.name)[0] or "application/octet-stream"
            return self._file(export_file.read_bytes(), kind, download=export_file.name)
        raise HTTPError(404 if method == "GET" else 405, f"no route {method} {path}")

    # -- bodies and answers ----------------------------------------------------------------------

    def _upload_name(self) -> str:
        name = self.headers.get("X-Filename", "")
        return os.path.basename(name.replace("\\", "/"))[:200]  # shown to the user only

    def _body(self, limit: int) -> bytes:
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise HTTPError(411, "the request needs a Content-Length") from None
        if length < 0:
            raise HTTPError(400, "bad Content-Length")
        if length > limit:
            self._discard(length)
            raise HTTPError(413, f"the file is too large: {length / 1e6:.1f} MB, the limit is {limit / 1e6:.1f} MB")
        body = self.rfile.read(length)
        if len(body) < length:  # the client closed its side early: keep nothing of it
            self.close_connection = True
            raise HTTPError(400, f"the request was cut short: {len(body)} of {length} bytes arrived")
        return body

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
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        if download:
            self.send_header("Content-Disposition", f'attachment; filename="{download}"')
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    """A threading HTTP server holding one ``App``; ``close()`` stops jobs and removes a temporary work folder."""

    daemon_threads = True

    def __init__(self, config: ServeConfig) -> None:
        self.app = App(config)
        super().__init__((config.host, config.port), Handler)

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
        token = self.app.config.token
        return f"http://{host}:{port}/" + (f"?token={token}" if token else "")

    def close(self) -> None:
        """Release the socket, jobs and work folder (``shutdown()`` first if ``serve_forever`` runs in a thread)."""
        self.server_close()
        self.app.close()


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def make_server(config: ServeConfig) -> Server:
    """Build (not start) a server; a non-loopback host without a token gets a fresh random one."""
    import secrets

    if not is_loopback(config.host) and not config.token:
        config.token = secrets.token_urlsafe(16)
    return Server(config)
