"""What the `vexil` command refuses, against a real server on loopback: input it cannot use is one
line on standard error and exit 2 (the README's "bad usage, invalid argument or input"), found
before anything is sent, never a traceback (exit 1) nor a status that blames the server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.pki import PkiFiles, make_pki
from tests.support.servers import VEXIL, ServerProcess

USAGE = 2
"""The README's exit code for bad usage, invalid argument or input."""
UINT64 = "from 0 to 18446744073709551615"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> str:
    with ServerProcess(tmp_path_factory.mktemp("refusals")) as server:
        yield server.target


def vexil(target: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([VEXIL, *args, "--target", target], capture_output=True, text=True, timeout=60)


def refused(done: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, no traceback, and every fragment in what it says."""
    assert done.returncode == USAGE, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, (fragment, done.stderr)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["watch", "--since", "-1", "--count", "1"], ["argument --since", UINT64]),
        (["watch", "--since", str(2**80), "--count", "1"], ["argument --since", UINT64]),
        (["flags", "rollback", "some-flag", "--to", "-1", "--reason", "r"], ["argument --to", UINT64]),
        (["flags", "changes", "--since", "-5"], ["argument --since", UINT64]),
        (["flags", "history", "some-flag", "--limit", str(2**32)], ["argument --limit", "4294967295"]),
        (["flags", "list", "--timeout", "-1"], ["argument --timeout", "more than 0"]),
        (["flags", "list", "--timeout", "nan"], ["argument --timeout", "more than 0"]),
        (["flags", "list", "--timeout", "1e12"], ["argument --timeout", "at most 86400"]),
        (["flags", "kill", "some-flag", "--wait", "--wait-timeout", "0"], ["argument --wait-timeout"]),
        (["keys", "rotate", "some-key", "--overlap-hours", "-1"], ["argument --overlap-hours", "from 0"]),
    ],
)
def test_a_number_out_of_range_is_a_usage_error_naming_the_option(
    target: str, argv: list[str], says: list[str]
) -> None:
    refused(vexil(target, *argv), *says)


UNREADABLE = {
    "binary.json": (b'{"flags": {}}\xff\xfe', "not UTF-8 text"),
    "long-number.json": (
        b'{"flags": {"n": {"state": "ENABLED", "variants": {"a": '
        + b"9" * 5000
        + b'}, "defaultVariant": "a"}}}',
        "4300 digits",
    ),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
@pytest.mark.parametrize("dry_run", [["--dry-run"], []])
def test_a_flags_file_that_cannot_be_read_is_named_with_what_is_wrong(
    target: str, tmp_path: Path, name: str, dry_run: list[str]
) -> None:
    content, says = UNREADABLE[name]
    path = tmp_path / name
    path.write_bytes(content)
    refused(vexil(target, "flags", "import", str(path), *dry_run), name, says)
    assert vexil(target, "flags", "get", "n").returncode == 3  # nothing was written


@pytest.mark.parametrize("command", [["create", "n"], ["update", "n"]])
def test_a_flag_file_option_that_cannot_be_read_is_named(
    target: str, tmp_path: Path, command: list[str]
) -> None:
    if command[0] == "update":  # an update reads the flag first
        assert vexil(target, "flags", "create", "n").returncode in (0, 4)
    path = tmp_path / "flag.json"
    path.write_bytes(b'{"variants": {"on": true}}\xff')
    refused(vexil(target, "flags", *command, "--file", str(path)), "--file flag.json", "not UTF-8 text")
    refused(
        vexil(target, "flags", *command, "--file", str(tmp_path / "none.json")), "none.json", "No such file"
    )


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_a_backup_file_that_cannot_be_read_is_named(target: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(UNREADABLE[name][0])
    for dry_run in (["--dry-run"], []):
        done = vexil(target, "backup", "import", str(path), "--quiet", *dry_run)
        refused(done, name, "not JSON")
        assert "sys.set_int_max_str_digits" not in done.stderr, done.stderr  # Python's advice, not ours


@pytest.mark.parametrize("dry_run", [["--dry-run"], []])
def test_an_import_the_server_would_refuse_is_refused_by_the_dry_run_too(
    target: str, tmp_path: Path, dry_run: list[str]
) -> None:
    path = tmp_path / "hashing.json"
    path.write_text(json.dumps({"metadata": {"fractionalHashing": "md5"}, "flags": {}}))
    done = vexil(target, "flags", "import", str(path), *dry_run)
    refused(done, "nothing was imported", "metadata.fractionalHashing", "'string', 'cbor'")
    assert "import failed" not in done.stderr  # refused by the check, before any write

    path.write_text(json.dumps({"metadata": {"fractionalHashing": "cbor"}, "flags": {}}))
    assert vexil(target, "flags", "import", str(path), "--dry-run").returncode == 0


SECRET = "0123456789abcdef_abc"
TOKENS = [
    # (token, what the message names): a token file with Windows line endings, a pasted one
    (f"vxk_{SECRET}\r", "a trailing carriage return"),
    (f"vxk_{SECRET}\n", "a trailing line feed"),
    (f"vxk_{SECRET}é", "non-ASCII character U+00E9"),
]


@pytest.mark.parametrize(("token", "names"), TOKENS)
@pytest.mark.parametrize("command", [["flags", "list"], ["status"]])
def test_a_token_a_header_cannot_carry_is_refused_before_any_call(
    target: str, token: str, names: str, command: list[str]
) -> None:
    by_option = vexil(target, *command, "--token", token)
    refused(by_option, "token", "characters a header cannot carry", names)
    by_variable = subprocess.run(
        [VEXIL, *command, "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "VEXIL_TOKEN": token},
    )
    refused(by_variable, "token", "characters a header cannot carry", names)
    assert SECRET not in by_option.stderr + by_variable.stderr  # a credential is never printed


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, PkiFiles]:
    """A TLS server on loopback, and the PKI it was made with."""
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    args = ("--tls-cert", pki.server_cert, "--tls-key", pki.server_key)
    with ServerProcess(tmp_path_factory.mktemp("tls"), *args, ca_cert=pki.ca) as server:
        yield server.target, pki


def test_a_tls_file_that_is_not_pem_is_refused_before_connecting(
    tls: tuple[str, PkiFiles], tmp_path: Path
) -> None:
    target, pki = tls
    yaml = tmp_path / "settings.yaml"
    yaml.write_text("flags:\n  x: 1\n")
    assert vexil(target, "flags", "list", "--ca-cert", pki.ca).returncode == 0  # the server is fine
    for command in (["flags", "list"], ["status"]):
        refused(vexil(target, *command, "--ca-cert", str(yaml)), f"not a PEM certificate: {yaml}")
    client = ["--ca-cert", pki.ca, "--client-key", pki.client_key]
    refused(
        vexil(target, "flags", "list", *client, "--client-cert", str(yaml)), f"not a PEM certificate: {yaml}"
    )
    client = ["--ca-cert", pki.ca, "--client-cert", pki.client_cert]
    refused(
        vexil(target, "flags", "list", *client, "--client-key", str(yaml)), f"not a PEM private key: {yaml}"
    )
    refused(vexil(target, "flags", "list", *client, "--client-key", pki.client_cert), "not a PEM private key")
    missing = tmp_path / "missing.pem"  # as before: the same check, the same exit code
    refused(vexil(target, "flags", "list", "--ca-cert", str(missing)), f"cannot read TLS file {missing}")
