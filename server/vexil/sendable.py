"""What a client can send or load, checked before it tries: a credential a header can carry, and
TLS files that are PEM of the right kind, a client key that is its certificate's.

Without these checks gRPC turns both mistakes into misleading failures at the first call: a token
read from a file with Windows line endings is "INTERNAL: Invalid metadata", and a CA file that is
not PEM fails the handshake as if the server were unavailable.  The CLI (`vexil.ops.connection`,
`vexil.security.tls`) and the client SDK (`vexil.client.config`) ask the same questions here, so
this module ships in both distributions and imports nothing of either.
"""

from __future__ import annotations

import re
import ssl

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


class _Encrypted(Exception):
    """Raised by `key_pair_problem`'s password callback: the key wants a passphrase."""


def _refuse_password() -> bytes:
    raise _Encrypted


def key_pair_problem(certificate: str, key: str) -> str:
    """Why the private key in file `key` cannot be used with the certificate in file
    `certificate` (to be said after the key's name), "" when it can.  gRPC takes any pair and
    fails only at the handshake ("Failed to create security handshaker", as if the server were
    unavailable), so they are loaded together first, as the TLS stack will; an encrypted key is
    refused at once (gRPC cannot use one) instead of prompting for its passphrase."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(certificate, key, password=_refuse_password)
    except _Encrypted:
        return "is encrypted: give a key without a passphrase"
    except (ssl.SSLError, OSError) as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            return f"is not the key of that certificate: {certificate}"
        return f"cannot be used with the certificate {certificate} ({exc})"
    return ""
