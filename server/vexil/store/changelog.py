"""Change-log rules both store backends share: what a reader may be handed, and how a change
applies to a plain set of flags.

A change log may lose its oldest entries (a retention by age or by count).  The protocol says a
reader notices that by the first entry not being `since + 1`; so a batch must never hide a hole
*inside* it either: `contiguous` cuts it at the first gap, and the next read then starts at the
hole and reports it.
"""

from __future__ import annotations

from collections.abc import Iterable

from vexil.model import Change, ChangeKind, Flag


def contiguous(changes: Iterable[Change]) -> list[Change]:
    """The leading run of `changes` (ascending) with consecutive `config_version`s."""
    run: list[Change] = []
    for change in changes:
        if run and change.config_version != run[-1].config_version + 1:
            break
        run.append(change)
    return run


def overlay(flags: dict[str, Flag], change: Change) -> None:
    """Apply one logged change to `flags` by flag version, as a snapshot does: a flag already at
    least as new stays; a delete removes only the version it deleted (or older)."""
    if change.kind is ChangeKind.DELETE:
        current = flags.get(change.flag_key)
        if current is not None and current.version <= change.before_version:
            del flags[change.flag_key]
    elif change.flag is not None:
        current = flags.get(change.flag.key)
        if current is None or current.version < change.flag.version:
            flags[change.flag.key] = change.flag
