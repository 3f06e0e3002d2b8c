"""Start-up data for local mode when the server cannot be reached: a flags file or a saved snapshot.

A service must be able to start (and serve its flags) while vexil is down.  Two sources:
- a flagd flag-definition file, the same format the server serves (`vexil.flagfile`), for
  defaults that ship with the service;
- the client's own last snapshot, persisted on every change (atomically: write, then rename, so
  a crash never leaves half a file), which is as fresh as the last time the service was
  connected.
The saved format is the Watch SNAPSHOT event itself (protobuf JSON) plus the time it was last
confirmed, so loading it goes through the very code that applies a live snapshot.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from google.protobuf import json_format

from vexil.client.local import local_snapshot
from vexil.errors import VexilError
from vexil.flagfile import parse_text
from vexil.model import Environment
from vexil.snapshot import Snapshot
from vexil.v1 import evaluation_pb2
from vexil.wire import environment_to_pb, flag_to_pb

FORMAT = "vexil.client.snapshot/1"


class BootstrapError(ValueError):
    """A bootstrap file cannot be used; the message says which and why."""


def load_flags_file(path: str, environment: str) -> Snapshot:
    """A snapshot of a flagd file's flags (config_version 0: never confirmed by a server)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        parsed = parse_text(text, environment or "local", source=path)
    except OSError as exc:
        raise BootstrapError(f"flags file {path}: {exc.strerror}") from None
    except (ValueError, VexilError) as exc:
        raise BootstrapError(str(exc) if path in str(exc) else f"flags file {path}: {exc}") from None
    env = Environment(name=environment or "local", evaluators=parsed.evaluators, metadata=parsed.metadata)
    return local_snapshot(env, parsed.flags)


def save_snapshot(path: str, snapshot: Snapshot, confirmed_at: float) -> None:
    event = evaluation_pb2.WatchEvent(
        type=evaluation_pb2.WatchEvent.TYPE_SNAPSHOT,
        config_version=snapshot.config_version,
        reason="persisted",
    )
    for flag in snapshot.flags():
        flag_to_pb(flag, event.flags.add())
    environment_to_pb(snapshot.environment, event.environment)
    document = {
        "format": FORMAT,
        "confirmedAt": confirmed_at,
        "event": json_format.MessageToDict(event, preserving_proto_field_name=True),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_snapshot(path: str) -> tuple[evaluation_pb2.WatchEvent, float]:
    """The saved SNAPSHOT event and when its data was last confirmed by the server."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        event = json_format.ParseDict(document["event"], evaluation_pb2.WatchEvent())
        if event.type != evaluation_pb2.WatchEvent.TYPE_SNAPSHOT:
            raise ValueError("the saved event is not a SNAPSHOT")
        return event, float(document.get("confirmedAt", 0.0))
    except OSError as exc:
        raise BootstrapError(f"snapshot file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, json_format.ParseError) as exc:
        raise BootstrapError(f"snapshot file {path}: {exc}") from None
