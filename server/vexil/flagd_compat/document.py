"""An environment as one flagd flag-configuration document: what in-process providers evaluate.

The document must be one that flagd providers accept *whole*: they parse the entire configuration
on every sync and keep the previous one if any part fails.  So it carries only flagd's fields
(vexil's `description`, `owner` and `tags` would make them reject every flag), only scalar metadata
(flagd's metadata values are strings, numbers and booleans), and no flag that vexil itself cannot
compile (such a flag answers PARSE_ERROR natively and FLAG_NOT_FOUND in-process: either way the
caller uses its code default).  The environment's kill switch, which flagd does not have, is
expressed as every flag DISABLED.  `$evaluators` are carried as they are (providers resolve `$ref`
themselves) and flag-set metadata goes both at the top level and merged under each flag's own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vexil.flagd_compat.metadata import scalar_metadata
from vexil.model import Environment, FlagState
from vexil.snapshot import BrokenFlag, Entry, Snapshot


def flagd_configuration(snapshot: Snapshot) -> dict[str, Any]:
    """The flagd document for `snapshot` (flags in key order)."""
    environment = snapshot.environment
    flags: dict[str, Any] = {}
    for key in sorted(snapshot.entries):
        entry: Entry = snapshot.entries[key]
        if type(entry) is BrokenFlag:
            continue
        body = entry.flag.definition()
        if environment.kill_switch:
            body["state"] = str(FlagState.DISABLED)
        metadata = scalar_metadata({**environment.metadata, **entry.flag.metadata})
        if metadata:
            body["metadata"] = metadata
        else:
            body.pop("metadata", None)
        flags[key] = body
    document: dict[str, Any] = {"flags": flags}
    if environment.evaluators:
        document["$evaluators"] = dict(environment.evaluators)
    metadata = scalar_metadata(environment.metadata)
    if metadata:
        document["metadata"] = metadata
    return document


class DocumentCache:
    """The JSON text per environment, built once per snapshot and shared by every sync stream."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[Environment, Mapping[str, Entry], str]] = {}

    def json(self, snapshot: Snapshot) -> str:
        built = self._built.get(snapshot.name)
        # A snapshot that was only re-confirmed against the store shares its predecessor's parts.
        if built is not None and built[0] is snapshot.environment and built[1] is snapshot.entries:
            return built[2]
        text = json.dumps(flagd_configuration(snapshot), separators=(",", ":"), ensure_ascii=False)
        self._built[snapshot.name] = (snapshot.environment, snapshot.entries, text)
        return text
