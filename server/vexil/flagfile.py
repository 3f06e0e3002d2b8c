"""flagd flag-definition files (JSON or YAML): parsing, and keeping an environment in step with one.

The file format is flagd's: `{"flags": {key: {state, variants, defaultVariant, targeting,
metadata}}, "$evaluators": {...}, "metadata": {...}}`.  vexil accepts three optional per-flag
extensions that flagd ignores: `description`, `owner` and `tags`.

`FileSync` makes the file the source of truth for one environment: at start and whenever the
file changes it validates the whole file first, then writes only the differences through the
service (so they are versioned, audited and pushed to subscribers like any admin write).  A file
that does not parse is reported and ignored: what is being served stays as it was.

A file loads as flagd loads it (`lenient=True`): one flag flagd would reject (a bad state, no
variants, a default variant the flag lacks, ...) is skipped with a WARNING naming the flag and the
path to fix, and the rest serve; a flag flagd loads but the admin API would refuse (a rule naming
a variant the flag lacks, wrong argument counts, ...) is loaded, with a WARNING, and answers at
evaluation time as flagd answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vexil.errors import InvalidArgument, VexilError
from vexil.model import Flag, FlagState

log = logging.getLogger(__name__)

FLAG_FIELDS = {"state", "variants", "defaultVariant", "targeting", "metadata", "description", "owner", "tags"}


@dataclass(frozen=True)
class FlagFile:
    flags: list[Flag]
    evaluators: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Lenient parse only: flag key -> why flagd would reject it (the message names the path)."""


def parse_text(text: str, environment: str, source: str = "flags file", *, lenient: bool = False) -> FlagFile:
    """Parse flagd JSON or YAML (YAML is a superset, but JSON errors read better, so try it first)."""
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"neither JSON nor YAML: {exc}", source) from None
    return parse_document(data, environment, source, lenient=lenient)


def parse_document(
    data: Any, environment: str, source: str = "flags file", *, lenient: bool = False
) -> FlagFile:
    """The flags of a flagd document.  A malformed flag raises `InvalidArgument`, or with
    `lenient` (as flagd loads a file) is left out and reported in `FlagFile.skipped`."""
    if not isinstance(data, dict):
        raise InvalidArgument("the top level must be an object with a 'flags' member", source)
    flags_obj = data.get("flags", {})
    if not isinstance(flags_obj, dict):
        raise InvalidArgument("must be an object of flag key -> definition", f"{source}: flags")
    evaluators = data.get("$evaluators", {}) or {}
    metadata = data.get("metadata", {}) or {}
    if not isinstance(evaluators, dict):
        raise InvalidArgument("must be an object", f"{source}: $evaluators")
    if not isinstance(metadata, dict):
        raise InvalidArgument("must be an object", f"{source}: metadata")
    flags: list[Flag] = []
    skipped: dict[str, str] = {}
    for key, body in flags_obj.items():
        try:
            flags.append(_flag(key, body, environment, f"{source}: flags.{key}"))
        except InvalidArgument as exc:
            if not lenient:
                raise
            skipped[str(key)] = exc.message
    return FlagFile(flags=flags, evaluators=evaluators, metadata=metadata, skipped=skipped)


def _flag(key: str, body: Any, environment: str, where: str) -> Flag:
    if not isinstance(body, dict):
        raise InvalidArgument("a flag definition must be an object", where)
    unknown = set(body) - FLAG_FIELDS
    if unknown:
        raise InvalidArgument(f"unknown field(s) {', '.join(sorted(unknown))}", where)
    state = body.get("state", "ENABLED")
    if state not in ("ENABLED", "DISABLED"):
        raise InvalidArgument(f"state must be ENABLED or DISABLED, not {state!r}", f"{where}.state")
    variants = body.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise InvalidArgument("a non-empty object of variant name -> value is required", f"{where}.variants")
    default = body.get("defaultVariant")
    if default is not None and not isinstance(default, str):
        raise InvalidArgument("must be a variant name or null", f"{where}.defaultVariant")
    if default and default not in variants:
        names = ", ".join(sorted(str(n) for n in variants)[:10])
        raise InvalidArgument(f"'{default}' is not one of the variants ({names})", f"{where}.defaultVariant")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidArgument("must be a list of strings", f"{where}.tags")
    metadata = body.get("metadata", {}) or {}
    if not isinstance(metadata, dict):
        raise InvalidArgument("must be an object", f"{where}.metadata")
    return Flag(
        key=str(key),
        environment=environment,
        variants=variants,
        default_variant=default,
        state=FlagState(state),
        targeting=body.get("targeting") or None,
        description=str(body.get("description", "")),
        owner=str(body.get("owner", "")),
        tags=tuple(tags),
        metadata=metadata,
    )


def to_document(flags: list[Flag], evaluators: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """The flagd document for a set of flags (vexil's extensions included when set)."""
    out: dict[str, Any] = {"flags": {}}
    for flag in sorted(flags, key=lambda f: f.key):
        body = flag.definition()
        if flag.description:
            body["description"] = flag.description
        if flag.owner:
            body["owner"] = flag.owner
        if flag.tags:
            body["tags"] = list(flag.tags)
        out["flags"][flag.key] = body
    if evaluators:
        out["$evaluators"] = dict(evaluators)
    if metadata:
        out["metadata"] = dict(metadata)
    return out


def same_definition(a: Flag, b: Flag) -> bool:
    """Equal as far as a flag file can say (ignores versions, timestamps and authorship)."""
    return (
        a.definition() == b.definition()
        and a.description == b.description
        and a.owner == b.owner
        and tuple(a.tags) == tuple(b.tags)
    )


class FileSync:
    """Keeps one environment in step with a flag file, polling its modification time."""

    def __init__(self, path: str, service: Any, environment: str, interval: float = 1.0) -> None:
        self.path = Path(path)
        self.service = service
        self.environment = environment
        self.interval = interval
        self.actor = f"file:{self.path.name}"
        self._stamp: tuple[float, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.last_error = ""

    async def sync(self) -> int:
        """Apply the file now; returns the number of writes. Raises VexilError if it is invalid."""
        parsed = parse_text(
            self.path.read_text(encoding="utf-8"), self.environment, str(self.path.name), lenient=True
        )
        service = self.service
        accepted, skipped = self._as_flagd_loads(parsed)  # validate everything before writing anything
        snapshot = service.cache.get(self.environment)
        writes = 0
        env = snapshot.environment
        if env.evaluators != parsed.evaluators or env.metadata != parsed.metadata:
            await service.update_environment(
                self.environment,
                evaluators=parsed.evaluators,
                metadata=parsed.metadata,
                expected_config_version=None,
                actor=self.actor,
                reason="flags file changed",
                check_flags=False,  # every flag of the file was checked against these evaluators
            )
            writes += 1
        wanted = {flag.key: flag for flag in accepted}
        for key, flag in wanted.items():
            current = snapshot.flag(key)
            if current is None:
                await service.create_flag(flag, actor=self.actor, reason="flags file changed", lenient=True)
                writes += 1
            elif not same_definition(current, flag):
                await service.update_flag(
                    flag, expected_version=None, actor=self.actor, reason="flags file changed", lenient=True
                )
                writes += 1
        # A flag skipped now keeps what it had: a mistake in the file never deletes it.
        for key in sorted(set(snapshot.entries) - set(wanted) - skipped):
            await service.delete_flag(
                self.environment,
                key,
                expected_version=None,
                actor=self.actor,
                reason="removed from flags file",
            )
            writes += 1
        return writes

    def _as_flagd_loads(self, parsed: FlagFile) -> tuple[list[Flag], set[str]]:
        """The flags to serve and the keys skipped, each reported with a WARNING: a flag flagd
        would reject is skipped; one the admin API would refuse but flagd loads is served."""
        name = self.path.name
        for key, why in parsed.skipped.items():
            log.warning("flag '%s' skipped (flagd does not load it either): %s", key, why)
        accepted: list[Flag] = []
        skipped = set(parsed.skipped)
        for flag in parsed.flags:
            try:
                self.service.validate(flag, parsed.evaluators)
            except InvalidArgument as strict:
                try:
                    self.service.validate(flag, parsed.evaluators, lenient=True)
                except InvalidArgument as exc:
                    log.warning("%s: flag '%s' skipped: %s", name, flag.key, exc.message)
                    skipped.add(flag.key)
                    continue
                log.warning(
                    "%s: flag '%s' loaded as flagd loads it, answering at evaluation time (the admin "
                    "API would refuse it: %s)",
                    name,
                    flag.key,
                    strict.message,
                )
            accepted.append(flag)
        return accepted, skipped

    def _current_stamp(self) -> tuple[float, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size)

    async def start(self) -> None:
        """Apply the file once (errors here stop the server: a bad file at start is a bad config)."""
        self._stamp = self._current_stamp()
        writes = await self.sync()
        log.info("loaded %s into %s (%d writes)", self.path, self.environment, writes)
        self._task = asyncio.create_task(self._watch(), name=f"flags-file:{self.path.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            stamp = self._current_stamp()
            if stamp is None or stamp == self._stamp:
                continue
            self._stamp = stamp
            try:
                writes = await self.sync()
                self.last_error = ""
                log.info("reloaded %s: %d writes", self.path, writes)
            except VexilError as exc:
                self.last_error = exc.message
                log.error("ignoring %s, still serving the previous flags: %s", self.path, exc.message)
            except Exception as exc:
                self.last_error = str(exc)
                log.exception("reloading %s failed; still serving the previous flags", self.path)
