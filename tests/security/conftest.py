"""Fixtures for the security tests: a test-time PKI and real TLS loopback servers with keys.

`secure` is an in-process server with TLS and authentication required, serving `local` and
`beta`, holding one API key per role in `local`, the same in `beta`, and a `root` admin key for
every environment.  `open_secure` starts others with different settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.pki import PkiFiles, make_pki
from tests.support.secure import Secure, open_secure
from vexil.security.roles import ROLES

PRINCIPALS = ("evaluator", "editor", "admin")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
async def secure(pki: PkiFiles) -> AsyncIterator[Secure]:
    async with open_secure(pki) as server:
        for role in ROLES:
            server.tokens[role] = await server.issue(role)
            server.tokens[f"beta-{role}"] = await server.issue(role, "beta")
        server.tokens["root"] = await server.issue("admin", "*")
        yield server
