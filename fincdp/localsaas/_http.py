"""A small threaded JSON-over-HTTP server base shared by the local SaaS servers."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()


Handler = Callable[[Request], Response]


class LocalServer:
    """Routes (method, path) to handlers; runs on 127.0.0.1 in a daemon thread.

    Subclasses register routes in `routes()`. `port=0` picks a free port; `url` tells which.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._host, self._port = host, port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.request_log: list[tuple[str, str, int]] = []  # (method, path, status), for tests
        self._log_lock = threading.Lock()

    def routes(self) -> dict[tuple[str, str], Handler]:
        raise NotImplementedError

    def before_request(self, request: Request) -> Response | None:
        """Hook for cross-cutting behaviour (rate limits, injected faults); a response short-circuits."""
        return None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "LocalServer":
        routes = self.routes()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, keep-alive clients wait
            # for the delayed ACK (~40 ms a request).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(method, parts.path, query, dict(self.headers.items()),
                                  self.rfile.read(length) if length else b"")
                handler = routes.get((method, parts.path))
                try:
                    response = server.before_request(request)
                    if response is None:
                        response = handler(request) if handler else Response(404, {"error": "not_found"})
                except Exception as exc:  # a server bug must surface as a 500, not a hung client
                    response = Response(500, {"error": "internal", "message": str(exc)})
                payload = response.encoded()
                # Logged before the response leaves, so a test that has its answer sees the entry.
                with server._log_lock:
                    server.request_log.append((method, parts.path, response.status))
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

        self._httpd = ThreadingHTTPServer((self._host, self._port), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True,
                                        name=type(self).__name__)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
