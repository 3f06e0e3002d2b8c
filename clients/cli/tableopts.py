"""The options of commands that reach the DynamoDB table directly (`vexil dynamodb`, `backup`,
`dr drill`, `ops check`, `keys create --bootstrap`), resolved like `vexil serve`'s settings.

The table name, region and endpoint come from the same settings as the server (flags, then
`VEXIL_*` variables, then a config file, then the profile's `feature-flags-<env>` default), so
the table an operator works on is the one the server uses.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vexil import config
from vexil.cli.exitcodes import UsageError

if TYPE_CHECKING:
    from vexil.store.dynamodb_client import ClientSettings


def add_table_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--config", help="TOML config file (also VEXIL_CONFIG)")
    p.add_argument("--env", help="environment profile (table feature-flags-<env>)")
    p.add_argument("--table", help="DynamoDB table (default feature-flags-<env>)")
    p.add_argument("--region", help="AWS region (default ap-northeast-1)")
    p.add_argument("--dynamodb-endpoint", help="endpoint URL (also VEXIL_DYNAMODB_ENDPOINT)")


def table_name(text: str) -> str:
    """The `type=` of an option naming a table to create or read (`--to`): DynamoDB's rule is
    checked while the command line is parsed, before any request."""
    if not config.TABLE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a table name; use {config.TABLE_NAME_RULE}")
    return text


def table_settings(args: argparse.Namespace, store: str | None = "dynamodb") -> config.Settings:
    """The settings the table options describe (`store` None: the command's own `--store`); a bad
    value is a usage error naming the setting."""
    try:
        return config.load(
            cli={
                "env": getattr(args, "env", None),
                "dynamodb_table": getattr(args, "table", None),
                "dynamodb_region": getattr(args, "region", None),
                "dynamodb_endpoint": getattr(args, "dynamodb_endpoint", None),
                "store": store if store else getattr(args, "store", None),
            },
            config_file=getattr(args, "config", None),
            options={"dynamodb_table": "--table", "dynamodb_region": "--region"},
        )
    except config.ConfigError as exc:
        raise UsageError(f"configuration error: {exc}") from None


def client_settings(settings: config.Settings) -> ClientSettings:
    """How to reach the settings' DynamoDB (region, endpoint)."""
    from vexil.store.dynamodb_client import ClientSettings

    return ClientSettings(region=settings.dynamodb_region, endpoint_url=settings.dynamodb_endpoint or None)
