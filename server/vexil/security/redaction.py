"""Credentials never reach the server log, whoever writes the record.

vexil's own records name keys by id and callers by address (`audit`), but libraries log what
they were sent when it is malformed: aiohttp writes the whole header line of a request it cannot
parse (an `Authorization: Bearer vxk_...` followed by a control character), grpc the metadata
value it cannot decode as UTF-8.  A credential in a log is a leaked credential.  `install` puts
`CredentialFilter` on every handler of the root logger, so every record passes it: an API key's
secret and a JWT become `<redacted>` in the message and in the traceback text, the key id stays
(it names the key, as the audit records do).
"""

from __future__ import annotations

import logging
import re

from vexil.security.apikeys import PREFIX

REDACTED = "<redacted>"
_API_KEY = re.compile(re.escape(PREFIX) + r"([0-9a-f]{16})_[A-Za-z0-9_\-]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_FORMATTER = logging.Formatter()


def redact(text: str) -> str:
    """`text` with every API key secret and every JWT replaced by `REDACTED`."""
    if PREFIX not in text and "eyJ" not in text:
        return text
    return _JWT.sub(REDACTED, _API_KEY.sub(rf"{PREFIX}\1_{REDACTED}", text))


class CredentialFilter(logging.Filter):
    """Redacts the message (formatted once, here) and the exception text of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put a `CredentialFilter` on every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, CredentialFilter) for f in handler.filters):
            handler.addFilter(CredentialFilter())
