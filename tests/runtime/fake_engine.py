"""A stand-in Dagger engine API on 127.0.0.1: GraphQL over HTTP, one field.

A module's code reaches the engine the way the Python runtime wires it: the
engine sets ``DAGGER_SESSION_PORT`` and ``DAGGER_SESSION_TOKEN`` and the SDK's
shared connection posts GraphQL to ``http://127.0.0.1:<port>/query`` with the
token as basic-auth user, after an introspection query for the schema. This
server speaks that protocol with a schema of one field, ``Query.version``, so
everything between our code and the wire (the SDK's query builder, its
transport, the response decoding) is the real thing. Every query is recorded.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import graphql

SCHEMA = graphql.build_schema("type Query { version: String! }")
TOKEN = "fake-session-token"


@dataclass
class FakeEngine:
    """What the engine answers, and the queries it received (introspection excluded)."""

    version: str
    port: int = 0
    queries: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """What the engine puts in a module runtime's environment."""
        return {"DAGGER_SESSION_PORT": str(self.port), "DAGGER_SESSION_TOKEN": TOKEN}

    def answer(self, body: bytes) -> dict[str, object]:
        request = json.loads(body)
        query = request["query"]
        if "__schema" not in query:
            self.queries.append(" ".join(query.split()))
        result = graphql.graphql_sync(
            SCHEMA,
            query,
            root_value={"version": self.version},
            variable_values=request.get("variables"),
            operation_name=request.get("operationName"),
        )
        return result.formatted


def _handler(engine: FakeEngine) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/query" or self.headers.get("Authorization") != expected:
                self.send_error(401 if self.path == "/query" else 404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            payload = json.dumps(engine.answer(body)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

    return Handler


@contextmanager
def serving(version: str) -> Iterator[FakeEngine]:
    """Run a fake engine that reports ``version`` until the block ends."""
    engine = FakeEngine(version)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(engine))
    engine.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield engine
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
