"""`vexil flags import` undoes its own writes with versions: an undo that would overwrite another
operator's concurrent change is reported (and the import fails), never written blindly."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support.flags import flag_pb
from tests.support.servers import ServerProcess
from vexil.cli import flagfiles
from vexil.v1 import admin_pb2, admin_pb2_grpc
from vexil.wire import dict_to_struct, struct_to_dict

ENV = "local"
BASE = {"is-base": {"in": ["@example.com", {"var": "email"}]}}
ADDED = {"is-added": {"ends_with": [{"var": "email"}, "@added.example"]}}
THEIRS = {"is-theirs": {"ends_with": [{"var": "email"}, "@theirs.example"]}}


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[admin_pb2_grpc.AdminServiceStub]:
    with ServerProcess(tmp_path) as process, grpc.insecure_channel(process.target) as channel:
        stub = admin_pb2_grpc.AdminServiceStub(channel)
        request = admin_pb2.UpdateEnvironmentRequest(environment=ENV)
        dict_to_struct(BASE, request.evaluators)
        stub.UpdateEnvironment(request, timeout=10)
        yield stub


def import_file(tmp_path: Path) -> str:
    path = tmp_path / "import.json"
    flags = {
        key: {"variants": {"on": True, "off": False}, "defaultVariant": "on"} for key in ("a", "b", "clash")
    }
    path.write_text(json.dumps({"flags": flags, "$evaluators": ADDED}))
    return str(path)


def concurrent(admin: admin_pb2_grpc.AdminServiceStub, *, change_environment: bool) -> Callable[..., Any]:
    """The import's `call`, with another operator acting right after the import's environment
    write: creating a flag the import will create next (so the import fails and undoes itself)
    and, with `change_environment`, adding an evaluator of their own."""

    def call(method: Any, request: Any) -> Any:
        result = method(request, timeout=10)
        if method is admin.UpdateEnvironment and not request.reason.startswith("undo"):
            if change_environment:
                theirs = admin_pb2.UpdateEnvironmentRequest(environment=ENV, reason="another operator")
                dict_to_struct({**evaluators(admin), **THEIRS}, theirs.evaluators)
                admin.UpdateEnvironment(theirs, timeout=10)
            admin.CreateFlag(admin_pb2.CreateFlagRequest(flag=flag_pb("clash")), timeout=10)
        return result

    return call


def import_against_another_operator(
    admin: admin_pb2_grpc.AdminServiceStub, tmp_path: Path, *, change_environment: bool
) -> None:
    """Run the import with another operator acting meanwhile (`concurrent`): it must fail on the
    flag the other operator created."""
    with pytest.raises(grpc.RpcError) as failed:
        flagfiles.run_import(
            concurrent(admin, change_environment=change_environment),
            admin,
            ENV,
            import_file(tmp_path),
            dry_run=False,
            reason="",
        )
    assert failed.value.code() == grpc.StatusCode.ALREADY_EXISTS


def flag_keys(admin: admin_pb2_grpc.AdminServiceStub) -> list[str]:
    flags = admin.ListFlags(admin_pb2.ListFlagsRequest(environment=ENV), timeout=10).flags
    return sorted(f.key for f in flags)


def evaluators(admin: admin_pb2_grpc.AdminServiceStub) -> dict[str, Any]:
    env = admin.GetEnvironment(admin_pb2.GetEnvironmentRequest(environment=ENV), timeout=10)
    return struct_to_dict(env.evaluators)


def test_undo_never_overwrites_a_concurrent_environment_change(
    admin: admin_pb2_grpc.AdminServiceStub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Right after the import writes the environment, another operator adds an evaluator and
    creates a flag the import is about to create: the import fails and undoes its flags, but the
    environment now holds the other operator's change, so its undo is refused and reported."""
    import_against_another_operator(admin, tmp_path, change_environment=True)
    assert evaluators(admin) == {**BASE, **ADDED, **THEIRS}, "the undo overwrote another operator's change"
    assert flag_keys(admin) == ["clash"]  # the import's own creates were undone
    err = capsys.readouterr().err
    assert "could not undo environment" in err
    assert "vexil flags export" in err  # says what to do next


def test_undo_restores_the_environment_when_nobody_else_changed_it(
    admin: admin_pb2_grpc.AdminServiceStub, tmp_path: Path
) -> None:
    import_against_another_operator(admin, tmp_path, change_environment=False)
    assert evaluators(admin) == BASE
    assert flag_keys(admin) == ["clash"]
