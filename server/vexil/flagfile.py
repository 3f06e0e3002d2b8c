"""flagd flag-definition files (JSON or YAML): parsing, and keeping an environment in step with one.

The file format is flagd's: `{"flags": {key: {state, variants, defaultVariant, targeting,
metadata}}, "$evaluators": {...}, "metadata": {...}}`.  vexil accepts three optional per-flag
extensions that flagd ignores: `description`, `owner` and `tags`.

`FileSync` makes the file the source of truth for one environment: at start and whenever the
file changes it validates the whole file first, then writes only the differences through the
service (so they are versioned, audited and pushed to subscribers like any admin write).  A file
that does not parse or validate is reported and ignored: what is being served stays as it was.
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


def parse_text(text: str, environment: str, source: str = "flags file") -> FlagFile:
    """Parse flagd JSON or YAML (YAML is a superset, but JSON errors read better, so try it first)."""
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"neither JSON nor YAML: {exc}", source) from None
    return parse_document(data, environment, source)


def parse_document(data: Any, environment: str, source: str = "flags file") -> FlagFile:
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
    flags = [_flag(key, body, environment, f"{source}: flags.{key}") for key, body in flags_obj.items()]
    return FlagFile(flags=flags, evaluators=evaluators, metadata=metadata)


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
    unquoted = [name for name in variants if isinstance(name, bool)]
    if unquoted:
        raise InvalidArgument(
            f"variant names must be strings; {_yaml_boolean(unquoted[0], '')}", f"{where}.variants"
        )
    default = body.get("defaultVariant")
    if isinstance(default, bool):
        raise InvalidArgument(
            f"must be a variant name or null; {_yaml_boolean(default, 'defaultVariant: ')}",
            f"{where}.defaultVariant",
        )
    if default is not None and not isinstance(default, str):
        raise InvalidArgument("must be a variant name or null", f"{where}.defaultVariant")
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


def _yaml_boolean(value: bool, prefix: str) -> str:
    """YAML 1.1 reads unquoted on/off, yes/no, true/false as booleans: say which to quote."""
    words, example = ("on, yes or true", "on") if value else ("off, no or false", "off")
    return f'YAML reads an unquoted {words} as {str(value).lower()}: quote the name, e.g. {prefix}"{example}"'


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
        parsed = parse_text(self.path.read_text(encoding="utf-8"), self.environment, str(self.path.name))
        service = self.service
        for flag in parsed.flags:  # validate everything before writing anything
            service.validate(flag, parsed.evaluators)
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
        wanted = {flag.key: flag for flag in parsed.flags}
        for key, flag in wanted.items():
            current = snapshot.flag(key)
            if current is None:
                await service.create_flag(flag, actor=self.actor, reason="flags file changed")
                writes += 1
            elif not same_definition(current, flag):
                await service.update_flag(
                    flag, expected_version=None, actor=self.actor, reason="flags file changed"
                )
                writes += 1
        for key in sorted(set(snapshot.entries) - set(wanted)):
            await service.delete_flag(
                self.environment,
                key,
                expected_version=None,
                actor=self.actor,
                reason="removed from flags file",
            )
            writes += 1
        return writes

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
