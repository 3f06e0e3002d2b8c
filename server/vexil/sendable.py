"""What a client can send or load, checked before it tries: a credential a header can carry, and
TLS files that are PEM of the right kind.

Without these checks gRPC turns both mistakes into misleading failures at the first call: a token
read from a file with Windows line endings is "INTERNAL: Invalid metadata", and a CA file that is
not PEM fails the handshake as if the server were unavailable.  The CLI (`vexil.ops.connection`,
`vexil.security.tls`) and the client SDK (`vexil.client.config`) ask the same questions here, so
this module ships in both distributions and imports nothing of either.
"""

from __future__ import annotations

import re

CERTIFICATE = "certificate"
PRIVATE_KEY = "private key"

CHARACTER_NAMES = {"\r": "carriage return (\\r)", "\n": "line feed (\\n)", "\t": "tab (\\t)"}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


def header_problem(value: str) -> str:
    """What in `value` a gRPC metadata value or HTTP header cannot carry (only printable ASCII,
    space to `~`), e.g. "a trailing carriage return (\\r)"; "" when it can carry all of it.  Names
    the character and where it is, never the value (a credential)."""
    bad = [i for i, c in enumerate(value) if not " " <= c <= "~"]
    if not bad:
        return ""
    first = bad[0]
    c = value[first]
    kind = "non-ASCII character" if ord(c) > 127 else "control character"
    name = CHARACTER_NAMES.get(c, f"{kind} U+{ord(c):04X}")
    where = "trailing " if first == len(value) - 1 else "leading " if first == 0 else ""
    text = f"a {where}{name}" + ("" if where else f" at position {first + 1}")
    return text + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")


def is_pem(data: bytes, what: str) -> bool:
    """Whether `data` holds at least one PEM block of kind `what` (CERTIFICATE or PRIVATE_KEY).
    Only the markers are checked: a broken body still fails at the handshake."""
    labels = [label.decode() for label in _PEM_BLOCK.findall(data)]
    suffix = "PRIVATE KEY" if what == PRIVATE_KEY else "CERTIFICATE"
    return any(label.endswith(suffix) for label in labels)
