"""Opaque page tokens shared by the store backends.

A token names the last item a page returned (a flag key or a history version), so the next page
starts strictly after it even if items were added or removed in between.  Tokens are base64 so
callers treat them as opaque; a malformed one is the caller's mistake (`InvalidArgument`).
"""

from __future__ import annotations

import base64
import binascii

from vexil.errors import InvalidArgument

MAX_PAGE_SIZE = 1000


def clamp_page_size(page_size: int, default: int) -> int:
    """Zero or negative means "the default"; anything above `MAX_PAGE_SIZE` is capped."""
    if page_size <= 0:
        return default
    return min(page_size, MAX_PAGE_SIZE)


def encode_token(kind: str, value: str) -> str:
    raw = f"{kind}:{value}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str) -> str:
    """The value inside a token of `kind`; "" for the empty token (first page)."""
    if not token:
        return ""
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("malformed page token", field="page_token") from None
    prefix, sep, value = raw.partition(":")
    if not sep or prefix != kind:
        raise InvalidArgument("page token belongs to another listing", field="page_token")
    return value


def encode_version_token(version: int) -> str:
    return encode_token("v", str(version))


def decode_version_token(token: str) -> int | None:
    """The version a history page ended at, or None for the first page."""
    value = decode_token(token, "v")
    if not value:
        return None
    if not value.isdigit():
        raise InvalidArgument("malformed page token", field="page_token")
    return int(value)
