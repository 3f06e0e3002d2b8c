"""The portable export: one JSON file holding a table's items and a checksum over them.

    {"format": "vexil-export", "version": 1, "createdAt": "...Z", "source": {...},
     "counts": {"FLAG": 12, ...}, "itemCount": 40, "checksum": "sha256:...", "items": [...]}

The checksum is SHA-256 over the canonical encoding of the items (`items.canonical`), so any
edit, truncation or lost item is caught before an import writes anything; the header is
informational.  Files may hold API-key items: those carry salted hashes, never secrets, but the
file should still be stored like any other backup (access-controlled).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vexil.errors import InvalidArgument
from vexil.ops import items as itemsets
from vexil.ops import outfile
from vexil.store.records import format_timestamp, parse_timestamp

FORMAT = "vexil-export"
VERSION = 1


class ExportError(InvalidArgument):
    """The file is not a vexil export, or it was changed or damaged since it was written."""


@dataclass
class Export:
    items: list[dict[str, Any]]
    source: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    @property
    def checksum(self) -> str:
        return itemsets.checksum(self.items)

    def document(self) -> dict[str, Any]:
        ordered = itemsets.sorted_items(self.items)
        return {
            "format": FORMAT,
            "version": VERSION,
            "createdAt": format_timestamp(self.created_at),
            "source": self.source,
            "counts": itemsets.counts(ordered),
            "itemCount": len(ordered),
            "checksum": itemsets.checksum(ordered),
            "items": [itemsets.json_item(item) for item in ordered],
        }


def write(path: str | Path, export: Export) -> dict[str, Any]:
    """Write atomically (a crash leaves the old file or none, never half of one); returns the
    header (the document without its items).  `outfile.Unwritable` when the path cannot be
    written: check it with `outfile.check_writable` before gathering the items."""
    document = export.document()

    def dump(fh: IO[str]) -> None:
        json.dump(document, fh, ensure_ascii=False, indent=1, sort_keys=True)
        fh.write("\n")

    outfile.write_atomically(path, dump)
    return header(document)


def header(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "items"}


def read(path: str | Path) -> Export:
    """Read and check an export; `ExportError` says what is wrong with it."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExportError(f"{path}: {exc.strerror}") from None
    except ValueError as exc:  # for a 4,300+ digit number Python adds advice after ';' that is not ours
        raise ExportError(f"{path}: not JSON ({str(exc).partition(';')[0]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ExportError(f"{path}: not a {FORMAT} file")
    if document.get("version") != VERSION:
        raise ExportError(f"{path}: format version {document.get('version')!r}; this vexil reads {VERSION}")
    raw = document.get("items")
    if not isinstance(raw, list):
        raise ExportError(f"{path}: no items list")
    try:
        found = [itemsets.wire_item(item) for item in raw]
        actual = itemsets.checksum(found)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ExportError(f"{path}: malformed item ({type(exc).__name__}: {exc})") from None
    if actual != document.get("checksum"):
        raise ExportError(
            f"{path}: checksum mismatch (file says {document.get('checksum')}, items give {actual}):"
            " it was changed or damaged after export; nothing was imported"
        )
    if document.get("itemCount") != len(found):
        raise ExportError(f"{path}: says {document.get('itemCount')} items, holds {len(found)}")
    return Export(
        items=found,
        source=dict(document.get("source") or {}),
        created_at=parse_timestamp(document.get("createdAt")),
    )
