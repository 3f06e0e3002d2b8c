"""The `http_port` setting: default 3001, 0 turns the HTTP side off, and a bad value stops start-up."""

from __future__ import annotations

import pytest

from tests.support.servers import connected, running_app, server_settings
from vexil import config


def test_http_port_default_and_validation() -> None:
    assert config.load(environ={}).http_port == 3001
    assert config.load(environ={"VEXIL_HTTP_PORT": "0"}).http_port == 0
    with pytest.raises(config.ConfigError, match=r"http_port .*--http-port.*not a TCP port"):
        config.load(cli={"http_port": 70000}, environ={})
    with pytest.raises(config.ConfigError, match="is the gRPC port"):
        config.load(cli={"port": 9000, "http_port": 9000}, environ={})


async def test_http_port_zero_serves_grpc_only() -> None:
    async with running_app(server_settings(http_port=0)) as app, connected(app):
        assert app.http is None and app.http_port == 0
