"""Files a command writes its result to (an export, a flags file): checked before the work and
replaced atomically after it.

An export reads a whole table or server before it writes; a path it cannot write (a directory, a
directory that cannot be created, one without write permission) must be refused before that
work, as bad input naming the file, not found at the end as a traceback.  The check makes the
directories and a temporary file exactly where the write will, so what it accepts the write can
do; the write itself goes through a temporary file and a rename, so a failure (a full disk)
leaves the previous file or none, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from vexil.errors import InvalidArgument


class Unwritable(InvalidArgument):
    """The output file cannot be written; nothing was written."""


def check_writable(path: str | Path) -> None:
    """Refuse (`Unwritable`, naming the file) a path the write would fail on."""
    target = Path(path)
    if target.is_dir():
        raise Unwritable(f"{path}: is a directory; name a file to write")
    with _refused(path):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)


def write_atomically(path: str | Path, write: Callable[[IO[str]], object]) -> None:
    """Write the file through `write` into a temporary file beside it, then rename it over it."""
    check_writable(path)
    target = Path(path)
    with _refused(path):
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                write(fh)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def _refused(path: str | Path) -> Iterator[None]:
    """Turn an OSError into `Unwritable` naming the file and the system's reason."""
    try:
        yield
    except OSError as exc:
        raise Unwritable(f"{path}: cannot be written ({exc.strerror or exc})") from None
