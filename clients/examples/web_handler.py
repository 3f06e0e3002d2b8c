"""A web handler that asks vexil, with nothing but the standard library's `http.server`.

    VEXIL_TARGET=127.0.0.1:50051 python clients/examples/web_handler.py --port 8080
    curl 'http://127.0.0.1:8080/checkout?user=user-42&country=JP'

One `Client` per process, created at start-up and shared by every request thread: in local
mode an evaluation is an in-memory lookup, so flags can be asked on every request without
adding latency.  `/healthz` shows the client's connection state (useful as a readiness probe).
"""

from __future__ import annotations

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from vexil.client import Client


def make_handler(client: Client) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/healthz":
                status = client.status()
                self.reply(
                    200 if status.state == "READY" else 503,
                    {"state": status.state, "version": status.config_version},
                )
            elif url.path == "/checkout":
                user = {"targetingKey": query.get("user", "anonymous"), "country": query.get("country", "")}
                self.reply(
                    200,
                    {
                        "newCheckout": client.bool_value("new-checkout", False, user),
                        "banner": client.string_value("banner-text", "Hello", user),
                        "searchV2": client.bool_value("search-v2", False, user),
                    },
                )
            else:
                self.reply(404, {"error": "not found"})

        def reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep the example's output quiet
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--max-requests", type=int, default=0, help="exit after this many requests (0: never)"
    )
    args = parser.parse_args(argv)

    # Target, API key, environment, ... come from VEXIL_* variables; local mode unless told otherwise.
    with Client(mode=os.environ.get("VEXIL_MODE", "local")) as client:
        if not client.wait_for_ready(5):
            print(f"vexil not ready ({client.status().message}); serving defaults meanwhile", flush=True)
        with ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(client)) as httpd:
            print(f"listening on http://127.0.0.1:{httpd.server_address[1]}", flush=True)
            if args.max_requests:
                httpd.daemon_threads = False  # so closing waits for the last responses
                for _ in range(args.max_requests):
                    httpd.handle_request()
            else:
                httpd.serve_forever()


if __name__ == "__main__":
    main()
