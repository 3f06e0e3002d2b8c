"""One mapping from the core's errors to HTTP responses, like `vexil.transport.status` for gRPC.

Bodies are OFREP's error shapes: `{"errorDetails"}` in general, plus `key` and an OpenFeature
`errorCode` where OFREP asks for them (a single flag's 400 and 404).  Messages reach the caller
unchanged; unexpected exceptions are logged and answered with a generic 500.

Every JSON answer of the HTTP side (OFREP, health, the console) is encoded here (`json_body`), so
none can fail on the way out: text that is not Unicode (a lone surrogate, which UTF-8 cannot
carry) is refused where requests are read, and if one still reaches an answer (a message echoing a
header, something stored before it was refused) it is written as its JSON escape.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from vexil.errors import ResourceExhausted, VexilError

log = logging.getLogger(__name__)

HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "NOT_FOUND": 404,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
}


LONE_SURROGATE = re.compile("[\\ud800-\\udfff]")


def _escaped(found: re.Match[str]) -> str:
    return f"\\u{ord(found.group()):04x}"


def json_body(value: Any) -> bytes:
    """`value` as JSON in UTF-8, non-ASCII characters as they are (aiohttp's default escapes every
    one).  A lone surrogate can only stand inside a JSON string, where its escape (`\\ud800`) is
    the same text, so escaping it keeps the answer valid JSON instead of failing to encode it."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return LONE_SURROGATE.sub(_escaped, text).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json_body(body), status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def json_error(status: int, details: str, **fields: Any) -> web.Response:
    return json_response({**fields, "errorDetails": details}, status=status)


def error_response(exc: VexilError, key: str | None = None) -> web.Response:
    """The response for a core error; `key` for the single-flag endpoint, whose 400 names the flag."""
    status = HTTP_STATUS.get(exc.code, 500)
    fields: dict[str, Any] = {}
    if status == 400:
        fields = {"key": key, "errorCode": "GENERAL"} if key is not None else {"errorCode": "GENERAL"}
    response = json_error(status, exc.message, **fields)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, ResourceExhausted) and exc.retry_after:
        response.headers["Retry-After"] = f"{exc.retry_after:.0f}"
    return response


def internal_error(where: str) -> web.Response:
    log.exception("unexpected error in %s", where)
    return json_error(500, f"internal error in {where}; see the server log")
