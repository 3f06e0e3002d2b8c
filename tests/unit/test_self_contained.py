"""The repository speaks only of itself: every document a comment or page names ships with it.

A reader of a clone has nothing else: a pointer to a page that is not in the repository (a design
brief, a notes file, a folder beside the checkout) is a dead end, so the suite refuses one.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

MARKDOWN_NAME = re.compile(r"(?<![\w/.:-])((?:\.{1,2}/)?[\w./-]*[\w-]\.md)\b(?!\()")
OUTSIDE = re.compile(r"\.\./shared|design card|DESIGN\.md|FACTS\.md", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".in", ".sh", ".proto", ".cfg", ""}
SKIP = ("requirements/", "server/vexil/v1/", "server/vexil/flagd/")


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    return [
        ROOT / n
        for n in names
        if not n.startswith(SKIP) and (Path(n).suffix in TEXT_SUFFIXES or n == "Makefile")
    ]


def _resolves(name: str, beside: Path) -> bool:
    candidates = [beside.parent / name, ROOT / name, ROOT / "docs" / name]
    return any(c.resolve().is_file() and ROOT in c.resolve().parents for c in candidates)


def test_every_named_document_is_in_the_repository() -> None:
    dead = []
    for path in _tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            for match in MARKDOWN_NAME.finditer(line):
                if "://" in line[max(0, match.start() - 80) : match.start()]:
                    continue  # part of a URL: a public page, not a file of ours
                if not _resolves(match.group(1), path):
                    dead.append(f"{path.relative_to(ROOT)}:{lineno}: {match.group(1)}")
    assert not dead, "documents named but not in the repository:\n" + "\n".join(dead)


def test_nothing_points_outside_the_repository() -> None:
    found = []
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert not found, "pointers outside the repository:\n" + "\n".join(found)


def test_the_operations_guide_the_code_cites_is_in_docs() -> None:
    """Comments say "the operations guide"; that guide, in English with its own headings, is here."""
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for heading in (
        "システム監視",
        "アラート設定",
        "セキュリティ管理",
        "バックアップ・復旧",
        "災害復旧手順",
        "運用チェックリスト",
    ):
        assert heading in guide, heading
