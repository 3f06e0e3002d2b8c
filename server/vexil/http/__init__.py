"""vexil's HTTP side: OFREP, `/healthz` and `/readyz` (and whatever `HttpServer.add_routes` adds).

It runs on the same event loop as the gRPC server and answers from the same snapshot cache; see
`server` for authentication and `ofrep` for the protocol.
"""

from vexil.http.server import Authenticator, HttpServer

__all__ = ["Authenticator", "HttpServer"]
