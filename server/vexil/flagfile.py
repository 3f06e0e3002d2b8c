"""flagd flag-definition files (JSON or YAML): parsing, and keeping an environment in step with one.

The file format is flagd's: `{"flags": {key: {state, variants, defaultVariant, targeting,
metadata}}, "$evaluators": {...}, "metadata": {...}}`.  vexil accepts three optional per-flag
extensions that flagd ignores: `description`, `owner` and `tags`.

`FileSync` applies the file to one environment: at start and whenever the file changes it
validates the whole file first, then writes only the differences through the service (so they are
versioned, audited and pushed to subscribers like any admin write).  It manages only the flags it
created and never changes a flag's state once it exists (see `FileSync`).  A file that does not
parse or validate is reported and ignored: what is being served stays as it was.

A file loads as flagd loads it: one flag flagd would reject (a bad state, no variants, a default
variant the flag lacks, ...) is skipped with a WARNING naming the flag and the path to fix, and the
rest serve; a flag flagd loads but the admin API would refuse (a rule naming a variant the flag
lacks, wrong argument counts, ...) is loaded, with a WARNING, and answers at evaluation time as
flagd answers.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from vexil.background import BackgroundTask
from vexil.engine import FlagValidationError, compile_flag
from vexil.errors import AlreadyExists, Conflict, InvalidArgument, NotFound, Unavailable, VexilError
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


def read_text(path: Path) -> str:
    """A flags file's text. Bytes that are not UTF-8 are an `InvalidArgument` naming the file and
    the first such byte (an `OSError` is the caller's to report)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", path.name
        ) from None


def parse_text(text: str, environment: str, source: str = "flags file", *, lenient: bool = False) -> FlagFile:
    """Parse flagd JSON or YAML (YAML is a superset, but JSON errors read better, so try it first)."""
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidArgument(f"neither JSON nor YAML: {exc}", source) from None
        except ValueError as exc:  # a value YAML's constructors refuse: an integer of more digits
            # than int() reads (4300), a date that is no date; Python's advice after ';' is not ours
            raise InvalidArgument(
                f"holds a value that cannot be read: {str(exc).partition(';')[0]}", source
            ) from None
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


def _text(body: dict[str, Any], name: str, where: str) -> str:
    """A text field of a definition; absent or null is "" (YAML's `description:` with nothing after)."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"must be text, not {json.dumps(value)[:40]}", f"{where}.{name}")
    return value


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
    if default and default not in variants:
        names = ", ".join(sorted(str(n) for n in variants)[:10])
        raise InvalidArgument(f"'{default}' is not one of the variants ({names})", f"{where}.defaultVariant")
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidArgument("must be a list of strings", f"{where}.tags")
    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidArgument("must be an object", f"{where}.metadata")
    targeting = body.get("targeting")
    if targeting is not None and not isinstance(targeting, dict):
        raise InvalidArgument("must be a JSONLogic rule (an object) or null", f"{where}.targeting")
    return Flag(
        key=str(key),
        environment=environment,
        variants=variants,
        default_variant=default,
        state=FlagState(state),
        targeting=targeting or None,
        description=_text(body, "description", where),
        owner=_text(body, "owner", where),
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


MODES = ("seed", "sync")
ATTEMPTS = 3
"""Writes of one flag tried at most this often when another writer moves it in between."""


class FileSync:
    """Applies a flag file to one environment, at start and whenever its modification time changes.

    The file is a source of flags, not the master of the environment: every flag it creates is
    recorded as managed by it (`Flag.managed_by`, `file:<file name>`), and it never writes any
    other flag.  In `sync` mode it also updates its own flags to follow the file and deletes
    those removed from it; in `seed` mode it only creates the flags that are missing.  A flag's
    state is the file's only when the file creates it: after that, killing and reviving is
    SetKillSwitch's alone, so a killed flag stays killed whatever the file says.
    """

    def __init__(
        self, path: str, service: Any, environment: str, interval: float = 1.0, mode: str = "sync"
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.path = Path(path)
        self.service = service
        self.environment = environment
        self.interval = interval
        self.mode = mode
        self.actor = f"file:{self.path.name}"
        self.owner = self.actor
        """The `managed_by` of the flags this file creates (the name, not the path, so replicas
        that mount the same file at different places agree on it)."""
        self._stamp: tuple[float, int] | None = None
        self._task = BackgroundTask(f"flags-file:{self.path.name}")
        self.last_error = ""

    async def sync(self) -> int:
        """Apply the file now; returns the number of writes. Raises VexilError if it is invalid."""
        parsed = await asyncio.to_thread(self._read)
        writes, accepted, skipped = await self._apply_environment(parsed)
        wanted = {flag.key: flag for flag in accepted}
        snapshot = self.service.cache.get(self.environment)
        for key, flag in wanted.items():
            put = self._retrying(key, snapshot.flag(key), functools.partial(self._put, flag))
            writes += await self._unless_refused(key, put)
        if self.mode == "sync":
            for current in sorted(snapshot.flags(), key=lambda f: f.key):
                # A flag skipped now keeps what it had: a mistake in the file never deletes it.
                if current.managed_by == self.owner and current.key not in wanted.keys() | skipped:
                    remove = self._retrying(current.key, current, self._remove)
                    writes += await self._unless_refused(current.key, remove)
        return writes

    async def _unless_refused(self, key: str, write: Awaitable[int]) -> int:
        """One flag's write. The service refusing that flag alone (the environment's flag limit,
        an item the store cannot hold) is reported and the other flags still apply, as a flag
        flagd rejects is skipped; only the store being unreachable stops the whole sync."""
        try:
            return await write
        except Unavailable:
            raise
        except VexilError as exc:
            log.warning("flags file %s: flag %s not written: %s", self.path.name, key, exc.message)
            return 0

    async def _apply_environment(self, parsed: FlagFile) -> tuple[int, list[Flag], set[str]]:
        """Validate the whole file against the environment it makes, before writing anything, then
        write the `$evaluators` and metadata it changes with the config version they were read at
        (another replica or operator may have changed them since this replica's snapshot).
        Returns the writes made, the flags to serve and the keys skipped."""
        service = self.service
        for _ in range(ATTEMPTS):
            snapshot = service.cache.get(self.environment)
            env = snapshot.environment
            evaluators, metadata = self._environment_config(parsed, env)
            accepted, skipped = self._as_flagd_loads(parsed, evaluators)
            replaced = [name for name, body in evaluators.items() if env.evaluators.get(name, body) != body]
            if replaced:  # an added entry cannot break a flag, a replaced one can
                self._check_unmanaged(snapshot.flags(), evaluators)
            if env.evaluators == evaluators and env.metadata == metadata:
                return 0, accepted, skipped
            try:
                await service.update_environment(
                    self.environment,
                    evaluators=evaluators,
                    metadata=metadata,
                    expected_config_version=env.config_version,
                    actor=self.actor,
                    reason="flags file changed",
                    check_flags=False,  # checked above: the file's flags and every flag it leaves alone
                )
                return 1, accepted, skipped
            except Conflict:
                await service.cache.catch_up(self.environment)
        raise Conflict(
            f"environment '{self.environment}' kept changing while {self.path.name} was applied; "
            "nothing of the file was written (save the file again to retry)"
        )

    def _environment_config(self, parsed: FlagFile, env: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The `$evaluators` and metadata after this file: its entries are added to the
        environment's (in `sync` mode replacing same-named ones, in `seed` mode never), and
        entries it does not name stay, since flags the file does not manage may use them."""
        if self.mode == "seed":
            return {**parsed.evaluators, **env.evaluators}, {**parsed.metadata, **env.metadata}
        return {**env.evaluators, **parsed.evaluators}, {**env.metadata, **parsed.metadata}

    def _check_unmanaged(self, flags: list[Flag], evaluators: dict[str, Any]) -> None:
        """Flags the file will not rewrite must still compile with the `$evaluators` it brings."""
        for flag in flags:
            if flag.managed_by == self.owner and self.mode == "sync":
                continue  # rewritten from the file, or deleted as no longer in it
            try:
                compile_flag(flag, evaluators)
            except FlagValidationError as exc:
                raise InvalidArgument(
                    f"flag '{flag.key}' (not managed by this file) would no longer compile with the "
                    f"file's $evaluators: {exc.message}",
                    f"{self.path.name}: $evaluators",
                ) from None

    async def _retrying(
        self, key: str, current: Flag | None, write: Callable[[Flag | None], Awaitable[int]]
    ) -> int:
        """`write(current)`; when another writer moved the flag in between, decide again from
        the store's current flag (bounded: a flag written that often is left for the next sync)."""
        for _ in range(ATTEMPTS):
            try:
                return await write(current)
            except (Conflict, AlreadyExists, NotFound):
                current = await self.service.store.get_flag(self.environment, key)
        log.warning(
            "flags file %s: flag %s kept changing while being synced; left as it is", self.path.name, key
        )
        return 0

    async def _put(self, flag: Flag, current: Flag | None) -> int:
        """Create `flag` if missing; in `sync` mode update it if this file manages it (keeping the
        stored state: only the kill switch changes the state of an existing flag)."""
        service = self.service
        if current is None:
            # The file's state applies to a key it creates; a key deleted earlier comes back in
            # the state it had then (a flag removed from the file and put back stays killed).
            owned = replace(flag, managed_by=self.owner)
            change = await service.create_flag(
                owned, actor=self.actor, reason="flags file changed", lenient=True, keep_state=True
            )
            if change.flag is not None and change.flag.state != flag.state:
                self._state_kept(flag, change.flag.state)
            return 1
        if current.managed_by != self.owner:
            if not same_definition(flag, current):
                log.warning(
                    "flags file %s: flag %s is %s, not by this file; left as it is",
                    self.path.name,
                    flag.key,
                    f"managed by {current.managed_by}" if current.managed_by else "managed through the API",
                )
            return 0
        if flag.state != current.state:
            self._state_kept(flag, current.state)
        desired = replace(flag, state=current.state)
        if self.mode == "seed" or same_definition(current, desired):
            return 0
        await service.update_flag(
            desired,
            expected_version=current.version,
            actor=self.actor,
            reason="flags file changed",
            lenient=True,
            # The state is the store's, whatever it is when the write lands: a kill between the
            # read above and this write changes the version (a retry), never refuses the file.
            keep_state=True,
        )
        return 1

    def _state_kept(self, flag: Flag, stored: FlagState) -> None:
        log.warning(
            "flags file %s: flag %s is %s in the store but %s in the file; the store's state stays "
            "(only SetKillSwitch kills or revives a flag)",
            self.path.name,
            flag.key,
            stored,
            flag.state,
        )

    async def _remove(self, current: Flag | None) -> int:
        """Delete a flag this file created and no longer defines (if it is still so)."""
        if current is None or current.managed_by != self.owner:
            return 0
        await self.service.delete_flag(
            self.environment,
            current.key,
            expected_version=current.version,
            actor=self.actor,
            reason="removed from flags file",
        )
        return 1

    def _as_flagd_loads(self, parsed: FlagFile, evaluators: dict[str, Any]) -> tuple[list[Flag], set[str]]:
        """The flags to serve and the keys skipped, each reported with a WARNING: a flag flagd
        would reject is skipped; one the admin API would refuse but flagd loads is served."""
        name = self.path.name
        for key, why in parsed.skipped.items():
            log.warning("flag '%s' skipped (flagd does not load it either): %s", key, why)
        accepted: list[Flag] = []
        skipped = set(parsed.skipped)
        for flag in parsed.flags:
            try:
                self.service.validate(flag, evaluators)
            except InvalidArgument as strict:
                try:
                    self.service.validate(flag, evaluators, lenient=True)
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

    def _read(self) -> FlagFile:
        """Read and parse the file (off the event loop: a large file takes a while to parse)."""
        return parse_text(read_text(self.path), self.environment, str(self.path.name), lenient=True)

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
        self._task.every(self.interval, self._reload_if_changed)

    async def stop(self) -> None:
        await self._task.stop()

    async def _reload_if_changed(self) -> None:
        stamp = self._current_stamp()
        if stamp is None or stamp == self._stamp:
            return
        previous, self._stamp = self._stamp, stamp
        try:
            writes = await self.sync()
            self.last_error = ""
            log.info("reloaded %s: %d writes", self.path, writes)
        except Unavailable as exc:
            # Some of the file may be written: it is applied again (only what differs) next tick.
            self._stamp = previous
            self.last_error = exc.message
            log.error(
                "applying %s stopped, the store did not answer (trying again): %s", self.path, exc.message
            )
        except VexilError as exc:
            self.last_error = exc.message
            log.error("ignoring %s, still serving the previous flags: %s", self.path, exc.message)
        except Exception as exc:
            self.last_error = str(exc)
            log.exception("reloading %s failed; still serving the previous flags", self.path)
