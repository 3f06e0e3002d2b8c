"""`vexil flags import FILE` and `vexil flags export [FILE]`: flagd flag-definition files, via admin RPCs.

Export writes an environment as one flagd document (`$evaluators`, flag-set `metadata` and every
flag, with vexil's `description`, `owner` and `tags`), as canonical JSON (sorted keys) so that
the same flags always export to the same bytes.

Import *merges* a file into an environment: flags in the file are created or updated, flags
that are not in it stay as they are, and the file's `$evaluators` and `metadata` entries are added
to (or replace same-named entries of) the environment's.  It is all-or-nothing:
- everything is checked before anything is written: the file parses, every key is valid, every
  definition passes the server's own checks of its size and fields (`service.check_definition`)
  and compiles with the real engine against the evaluators it will be evaluated with, and the
  environment's new metadata passes the server's own check (`fractionalHashing`), so a dry run
  refuses what the import would be refused;
- the writes carry the versions that were read, so a concurrent change makes the import fail
  instead of overwriting it;
- if a write is refused anyway (a concurrent change, a permission, the environment's flag limit),
  the writes already made are undone in reverse order, and the report says so.  Undoing is
  versioned too: a write that someone else changed after the import made it is left as it is and
  reported (with what to do), never overwritten.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from vexil.engine import FlagValidationError, compile_flag
from vexil.errors import InvalidArgument
from vexil.flagfile import FlagFile, parse_text, read_text, same_definition, to_document
from vexil.model import FLAG_KEY_PATTERN, Environment, Flag
from vexil.ops import outfile
from vexil.service import check_definition, check_fractional_hashing
from vexil.store.records import check_portable
from vexil.v1 import admin_pb2, flag_pb2
from vexil.wire import (
    dict_to_struct,
    environment_from_pb,
    flag_from_pb,
    flag_to_pb,
    struct_to_dict,
)

Call = Callable[[Callable[..., Any], Any], Any]
"""`Remote.call`: invoke a stub method with the CLI's timeout and credentials."""


class FileProblem(Exception):
    """The file cannot be imported as it is; nothing was written."""


class UndoRefused(Exception):
    """Undoing one of the import's writes would overwrite a change someone else made since."""


# -- reading an environment --------------------------------------------------------------------


def read_environment(call: Call, admin: Any, environment: str) -> tuple[Environment, dict[str, Flag]]:
    env = environment_from_pb(
        call(admin.GetEnvironment, admin_pb2.GetEnvironmentRequest(environment=environment))
    )
    flags: dict[str, Flag] = {}
    token = ""
    while True:
        request = admin_pb2.ListFlagsRequest(environment=environment, page_size=500, page_token=token)
        response = call(admin.ListFlags, request)
        for msg in response.flags:
            flag = flag_from_pb(msg)
            flags[flag.key] = flag
        token = response.next_page_token
        if not token:
            return env, flags


def export_text(call: Call, admin: Any, environment: str) -> tuple[str, int]:
    """The environment as canonical flagd JSON, and how many flags it holds."""
    env, flags = read_environment(call, admin, environment)
    document = to_document(list(flags.values()), dict(env.evaluators), dict(env.metadata))
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n", len(flags)


# -- planning an import ------------------------------------------------------------------------


@dataclass
class Plan:
    environment: Environment
    evaluators: dict[str, Any]
    metadata: dict[str, Any]
    create: list[Flag] = field(default_factory=list)
    update: list[tuple[Flag, Flag]] = field(default_factory=list)
    """(current, wanted) pairs."""
    unchanged: list[str] = field(default_factory=list)
    state_kept: list[str] = field(default_factory=list)
    """Flags whose state in the file differs from the environment's: the environment's stays
    (only the kill switch kills or revives an existing flag)."""

    @property
    def environment_changes(self) -> bool:
        return self.evaluators != self.environment.evaluators or self.metadata != self.environment.metadata


def parse_file(path: str, environment: str) -> FlagFile:
    try:
        parsed = parse_text(read_text(Path(path)), environment, Path(path).name)
        for flag in parsed.flags:
            check_portable(flag.variants, f"flags.{flag.key}.variants", depth=0)
            check_portable(flag.targeting, f"flags.{flag.key}.targeting")
            check_portable(flag.metadata, f"flags.{flag.key}.metadata")
        check_portable(parsed.evaluators, "$evaluators")
        check_portable(parsed.metadata, "metadata")
    except OSError as exc:
        raise FileProblem(f"{path}: {exc.strerror}") from None
    except InvalidArgument as exc:
        raise FileProblem(exc.message) from None
    # As the server will store them (through protobuf, where `1.0` is `1`), so that comparing
    # with what is stored finds only real differences.
    return FlagFile(
        flags=[flag_from_pb(flag_to_pb(flag)) for flag in parsed.flags],
        evaluators=struct_to_dict(dict_to_struct(parsed.evaluators)),
        metadata=struct_to_dict(dict_to_struct(parsed.metadata)),
    )


def plan_import(parsed: FlagFile, env: Environment, current: dict[str, Flag]) -> Plan:
    """What the import will write; raises FileProblem naming every problem found."""
    plan = Plan(env, {**env.evaluators, **parsed.evaluators}, {**env.metadata, **parsed.metadata})
    problems: list[str] = []

    def check(flag: Flag, where: str) -> None:
        if not FLAG_KEY_PATTERN.fullmatch(flag.key):
            problems.append(f"{where}: not a valid key (1-128 characters from A-Z a-z 0-9 _ . -)")
            return
        try:
            compile_flag(flag, plan.evaluators)
        except FlagValidationError as exc:
            problems.append(f"{where}{'.' + exc.path if exc.path else ''}: {exc.message}")

    for flag in parsed.flags:
        try:  # the server's own checks, as the write will meet them
            check_definition(flag)
        except InvalidArgument as exc:
            field = f"flags.{flag.key}" + exc.field.removeprefix("flag")
            problems.append(f"{field}: {exc.description}")
        check(flag, f"flags.{flag.key}")
        existing = current.get(flag.key)
        if existing is None:
            plan.create.append(flag)
            continue
        if flag.state != existing.state:
            plan.state_kept.append(flag.key)
            flag = replace(flag, state=existing.state)
        if same_definition(existing, flag):
            plan.unchanged.append(flag.key)
        else:
            plan.update.append((existing, flag))
    if plan.environment_changes:  # as the server checks the UpdateEnvironment the import makes
        try:
            check_fractional_hashing(plan.metadata)
        except InvalidArgument as exc:
            problems.append(exc.message)
    if plan.evaluators != env.evaluators:
        imported = {flag.key for flag in parsed.flags}
        for key, flag in current.items():  # flags the import leaves alone must still compile
            if key not in imported:
                check(flag, f"flag {key} (in the environment, not in the file) with the new $evaluators")
    if problems:
        raise FileProblem("nothing was imported:\n  " + "\n  ".join(problems))
    return plan


# -- applying it -------------------------------------------------------------------------------


def writable_flag(flag: Flag, environment: str) -> Any:
    """A flag as a write request carries it (output-only fields cleared)."""
    return flag_to_pb(
        replace(
            flag,
            environment=environment,
            version=0,
            created_at=0,
            updated_at=0,
            updated_by="",
            managed_by="",
            problem="",
        )
    )


@dataclass
class Importer:
    call: Call
    admin: Any
    environment: str
    reason: str
    undo: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    not_rolled_back: list[str] = field(default_factory=list)

    def _update_environment(
        self, evaluators: dict[str, Any], metadata: dict[str, Any], expected: int, reason: str
    ) -> Environment:
        request = admin_pb2.UpdateEnvironmentRequest(
            environment=self.environment, reason=reason, expected_config_version=expected
        )
        dict_to_struct(evaluators, request.evaluators)
        dict_to_struct(metadata, request.metadata)
        return environment_from_pb(self.call(self.admin.UpdateEnvironment, request))

    def apply(self, plan: Plan) -> None:
        """Write the plan; on any refusal undo what was written, then re-raise."""
        old = plan.environment
        try:
            if plan.environment_changes:
                written = self._update_environment(
                    plan.evaluators, plan.metadata, old.config_version, self.reason
                )
                self.undo.append(("environment", self._environment_restorer(old, written)))
            for flag in plan.create:
                writable = writable_flag(flag, self.environment)
                asked = writable.state
                if asked == flag_pb2.FLAG_STATE_ENABLED:
                    # Said as "no state": a key deleted earlier comes back in the state it had.
                    writable.state = flag_pb2.FLAG_STATE_UNSPECIFIED
                request = admin_pb2.CreateFlagRequest(flag=writable, reason=self.reason)
                created = self.call(self.admin.CreateFlag, request).flag
                if created.state != asked:
                    plan.state_kept.append(flag.key)
                self.undo.append((f"create {flag.key}", self._deleter(flag.key, created.version)))
            for current, wanted in plan.update:
                request = admin_pb2.UpdateFlagRequest(
                    flag=writable_flag(wanted, self.environment),
                    expected_version=current.version,
                    reason=self.reason,
                )
                written = self.call(self.admin.UpdateFlag, request).flag
                self.undo.append((f"update {wanted.key}", self._restorer(current, written.version)))
        except grpc.RpcError:
            self.rollback()
            raise

    def _environment_restorer(self, previous: Environment, written: Environment) -> Callable[[], Any]:
        """Put the previous `$evaluators` and metadata back, only while they are still what the
        import wrote (every flag write moves `config_version`, so it cannot tell on its own), and
        only if nothing writes in between (expected config version)."""

        def undo() -> None:
            request = admin_pb2.GetEnvironmentRequest(environment=self.environment)
            current = environment_from_pb(self.call(self.admin.GetEnvironment, request))
            if (current.evaluators, current.metadata) != (written.evaluators, written.metadata):
                raise UndoRefused(
                    "its $evaluators or metadata were changed by someone else after the import "
                    f"wrote them (now at config version {current.config_version})"
                )
            self._update_environment(
                dict(previous.evaluators),
                dict(previous.metadata),
                current.config_version,
                f"undo: {self.reason}",
            )

        return undo

    def _deleter(self, key: str, version: int) -> Callable[[], Any]:
        request = admin_pb2.DeleteFlagRequest(
            environment=self.environment, key=key, expected_version=version, reason=f"undo: {self.reason}"
        )
        return lambda: self.call(self.admin.DeleteFlag, request)

    def _restorer(self, previous: Flag, version: int) -> Callable[[], Any]:
        request = admin_pb2.UpdateFlagRequest(
            flag=writable_flag(previous, self.environment),
            expected_version=version,
            reason=f"undo: {self.reason}",
        )
        return lambda: self.call(self.admin.UpdateFlag, request)

    def rollback(self) -> None:
        """Undo the writes made, newest first; each once, however often this is called (a
        caller that made writes of its own around `apply` rolls back after it too)."""
        while self.undo:
            what, undo = self.undo.pop()
            try:
                undo()
                self.rolled_back.append(what)
            except grpc.RpcError as exc:
                self.not_rolled_back.append(f"{what}: {exc.details()}")  # type: ignore[attr-defined]
            except UndoRefused as exc:
                self.not_rolled_back.append(f"{what}: {exc}")


def summary(plan: Plan, file: str, dry_run: bool) -> dict[str, Any]:
    return {
        "file": file,
        "environment": plan.environment.name,
        "dry_run": dry_run,
        "environment_updated": plan.environment_changes,
        "created": [f.key for f in plan.create],
        "updated": [wanted.key for _, wanted in plan.update],
        "unchanged": plan.unchanged,
        "state_kept": plan.state_kept,
    }


def render_summary(data: dict[str, Any]) -> str:
    verb = "would import" if data["dry_run"] else "imported"
    lines = [f"{verb} {data['file']} into environment {data['environment']}:"]
    for label in ("created", "updated", "unchanged"):
        keys = data[label]
        lines.append(f"  {label:<10} {len(keys):>4}  {', '.join(keys)}".rstrip())
    if data["environment_updated"]:
        lines.append("  $evaluators / metadata updated")
    if data["state_kept"]:
        kept = data["state_kept"]
        lines.append(f"  state kept {len(kept):>4}  {', '.join(kept)}")
        lines.append("  (their state in the file differs; `vexil flags kill` kills or revives a flag)")
    return "\n".join(lines)


# -- the commands ------------------------------------------------------------------------------


def run_import(
    call: Call, admin: Any, environment: str, path: str, *, dry_run: bool, reason: str
) -> dict[str, Any]:
    """Check, plan and (unless `dry_run`) apply an import; returns the summary.

    Raises FileProblem when the file cannot be imported (nothing written), and grpc.RpcError when
    the server refused a write (after undoing the writes made, reported on stderr)."""
    parsed = parse_file(path, environment)
    env, current = read_environment(call, admin, environment)
    plan = plan_import(parsed, env, current)
    if not dry_run:
        importer = Importer(call, admin, environment, reason or f"import {Path(path).name}")
        try:
            importer.apply(plan)
        except grpc.RpcError:
            print(f"vexil: import failed; undid {len(importer.rolled_back)} write(s)", file=sys.stderr)
            for problem in importer.not_rolled_back:
                print(f"vexil: could not undo {problem}", file=sys.stderr)
            if importer.not_rolled_back:
                print(
                    "vexil: those writes of the import are still in place and were not overwritten, "
                    "because someone else changed the environment meanwhile: compare it with "
                    f"`vexil flags export -e {environment}` and put back by hand what should not stay",
                    file=sys.stderr,
                )
            raise
    return summary(plan, path, dry_run)


def run_export(call: Call, admin: Any, environment: str, path: str | None) -> dict[str, Any] | None:
    """Write the environment to `path`, or to stdout when there is none (then returns None).  A
    path that cannot be written is refused before the environment is read."""
    if path is not None:
        outfile.check_writable(path)
    text, count = export_text(call, admin, environment)
    if path is None:
        sys.stdout.write(text)
        return None
    outfile.write_atomically(path, lambda fh: fh.write(text))
    return {"file": path, "flags": count}
