"""A small real OpenAI-compatible HTTP server on loopback, for replies llm-katan cannot send.

llm-katan injects transport faults (500, 503, 504, latency, refused keys); this server sends
what a misbehaving real server sends with HTTP 200 or a plain 4xx: ``content: null``,
``choices: []``, a 400 for every request, or a valid answer (``Answer: 1``) so that runs
parse and score. It records every request (path, query, headers, body) for the tests to check.

``with chat_server(mode="answer") as server:`` runs it in a thread; ``server.mode`` may be
changed while it runs; ``server.openai_url`` is what ``--base-url`` takes.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ChatServer", "chat_server"]

MODES = ("answer", "null", "nochoices", "400", "stall")


class ChatServer:
    def __init__(self, httpd: ThreadingHTTPServer, mode: str, stall_s: float) -> None:
        self.httpd = httpd
        self.mode = mode
        self.stall_s = stall_s
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _completion(content: str | None, choices: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": "test-model",
        "usage": {"prompt_tokens": 7, "completion_tokens": 0 if content is None else len(content.split()),
                  "total_tokens": 7},
        "choices": [],
    }
    if choices:
        body["choices"] = [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content}}]
    return body


def _handler(server_ref: list[ChatServer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            server = server_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            parts = urlsplit(self.path)
            with server.lock:
                server.requests.append({"path": parts.path, "query": parse_qs(parts.query),
                                        "headers": dict(self.headers), "body": body})
            mode = server.mode
            if mode == "stall":
                time.sleep(server.stall_s)
                mode = "answer"
            if mode == "400":
                self._send(400, {"error": {"message": "max_tokens is too large for this model", "type": "invalid_request_error"}})
            elif mode == "null":
                self._send(200, _completion(None))
            elif mode == "nochoices":
                self._send(200, _completion(None, choices=False))
            else:
                self._send(200, _completion("Answer: 1\nExplanation: It is what most people here would say."))

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up (a cancelled request) is part of the tests, not a server failure


@contextlib.contextmanager
def chat_server(mode: str = "answer", stall_s: float = 60.0) -> Iterator[ChatServer]:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; choose one of {', '.join(MODES)}")
    ref: list[ChatServer] = []
    httpd = _QuietServer(("127.0.0.1", 0), _handler(ref))
    httpd.daemon_threads = True
    server = ChatServer(httpd, mode, stall_s)
    ref.append(server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
