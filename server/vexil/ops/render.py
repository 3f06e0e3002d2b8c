"""Text rendering of the operations reports (health table, checks, drill, verify, backups).

Colour is applied after the columns are padded, so ANSI codes never throw the alignment off;
it is only used when asked (the CLI turns it on for terminals, off for pipes and `NO_COLOR`).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

COLOURS = {
    "OK": "32",
    "PASS": "32",
    "NOTE": "36",
    "MANUAL": "36",
    "WARN": "33",
    "CRIT": "31",
    "FAIL": "31",
    "UNKNOWN": "2",
}


def paint(text: str, word: str, colour: bool) -> str:
    code = COLOURS.get(word)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, colour_column: int = -1, colour: bool = False
) -> str:
    """Aligned columns; the cells of `colour_column` are painted by their own text."""
    cells = [list(headers), *[[str(c) for c in row] for row in rows]]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        padded = [c + " " * (w - width(c)) for c, w in zip(row, widths, strict=True)]
        if n and 0 <= colour_column < len(row):
            padded[colour_column] = paint(padded[colour_column], row[colour_column], colour)
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def width(text: str) -> int:
    """Terminal columns: East Asian wide characters (the guide's Japanese) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def show(value: float | None, unit: str) -> str:
    """A reading in its unit, the one way every operations report (the health table, the
    checklists) prints it: milliseconds below a second, a ratio as a percentage."""
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.1f} s"
    if unit == "ratio":
        return f"{value * 100:.2f} %"
    return f"{value:g}"


def _limit(value: float | None, unit: str, worse: str, *, target: bool = False) -> str:
    if value is None:
        return "-"
    if target:
        sign = "<" if worse == "above" else ">"
        return f"{sign} {show(value, unit)}" if value else show(value, unit)
    return f"{'>' if worse == 'above' else '<'} {show(value, unit)}"


def health(report: dict[str, Any], *, target: str, colour: bool) -> str:
    state = report["state"].removeprefix("STATE_")
    lines = [
        f"vexil status  {target}  {paint(state, report['stateLevel'], colour)}  ({report['window']})",
        "",
    ]
    rows = [
        (
            i["title"],
            _limit(i["target"], i["unit"], i["worse"], target=True),
            _limit(i["warning"], i["unit"], i["worse"]),
            _limit(i["critical"], i["unit"], i["worse"]),
            show(i["value"], i["unit"]),
            i["level"],
            i["detail"],
        )
        for i in report["indicators"]
    ]
    headers = ("INDICATOR", "TARGET", "WARNING", "CRITICAL", "CURRENT", "STATE", "")
    lines.append(table(headers, rows, colour_column=5, colour=colour))
    envs = report.get("environments") or []
    if envs:
        lines.append("")
        env_rows = [
            (
                e.get("name", ""),
                str(e.get("config_version", 0)),
                str(e.get("flags", 0)),
                show(float(e.get("staleness_seconds", 0.0)), "s"),
                str(e.get("subscribers", 0)),
                "yes" if e.get("healthy") else f"NO: {e.get('last_error', '')}",
            )
            for e in envs
        ]
        lines.append(
            table(("ENVIRONMENT", "CONFIG", "FLAGS", "STALENESS", "SUBSCRIBERS", "HEALTHY"), env_rows)
        )
        replica_rows = [
            (
                e.get("name", ""),
                r.get("id", "") + (" (this)" if r.get("self") else ""),
                r.get("address", ""),
                str(r.get("config_version", 0)),
                str(r.get("lag", 0)),
                show(float(r.get("last_seen_seconds", 0.0)), "s"),
            )
            for e in envs
            for r in e.get("replicas") or []
        ]
        if replica_rows:
            lines.append("")
            lines.append(
                table(("ENVIRONMENT", "REPLICA", "ADDRESS", "APPLIED", "LAG", "LAST SEEN"), replica_rows)
            )
    for problem in report.get("problems", []):
        lines.append(paint(f"problem: {problem}", "CRIT", colour))
    for reason in report.get("insecure", []):
        lines.append(paint(f"INSECURE: {reason}", "WARN", colour))
    lines.append("")
    lines.append(f"overall: {paint(report['level'], report['level'], colour)}")
    return "\n".join(lines)


def checks(schedule: str, results: list[dict[str, Any]], *, colour: bool, verbose: bool = True) -> str:
    rows = [(r["status"], r["check"], r["item"], r["summary"]) for r in results]
    lines = [
        f"vexil ops check {schedule}",
        "",
        table(("STATUS", "CHECK", "CHECKLIST ITEM", "RESULT"), rows, colour_column=0, colour=colour),
    ]
    if verbose:
        for r in results:
            if r["details"] and r["status"] != "PASS":
                lines.append("")
                lines.append(f"{r['check']}:")
                lines.extend(f"  {d}" for d in r["details"])
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("PASS", "WARN", "FAIL", "MANUAL")}
    lines.append("")
    lines.append("  ".join(paint(f"{n} {s}", s, colour and n > 0) for s, n in counts.items()))
    return "\n".join(lines)


def drill(report: dict[str, Any], *, colour: bool) -> str:
    lines = [f"DR drill: {report['source']} -> {report['target']}", ""]
    rows = [
        (str(n), s["step"], f"{s['seconds']:.2f} s", "ok" if s["ok"] else "FAIL", s["detail"])
        for n, s in enumerate(report["steps"], 1)
    ]
    lines.append(table(("#", "STEP", "TIME", "", "DETAIL"), rows))
    rto = "PASS" if report["rtoMet"] else "FAIL"
    rpo = "PASS" if report["rpoMet"] else "WARN"
    lines += [
        "",
        f"recovery time (restore + verify + serve): {report['recoverySeconds']:.2f} s"
        f"  vs RTO {report['rtoSeconds'] // 60} min  {paint(rto, rto, colour)}",
        f"recovery point: {_rpo(report['rpoSeconds'])}  vs RPO {report['rpoTargetSeconds'] // 60} min"
        f"  {paint(rpo, rpo, colour)}  ({report['rpoDetail']})",
        f"whole drill: {report['totalSeconds']:.2f} s; backup kept: {report['backup'] or '-'};"
        f" restored table: {_restored(report)}",
        "",
        "drill "
        + paint("PASSED" if report["passed"] else "FAILED", "PASS" if report["passed"] else "FAIL", colour),
    ]
    return "\n".join(lines)


def _restored(report: dict[str, Any]) -> str:
    if report["restoredTableKept"]:
        return f"kept ({report['target']})"
    cleanup = [s for s in report["steps"] if s["step"] == "cleanup"]
    if not cleanup:
        return "not created"
    return "deleted" if cleanup[0]["ok"] else cleanup[0]["detail"]


def _rpo(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def verify(report: dict[str, Any], *, colour: bool) -> str:
    verdict = paint("EQUAL", "PASS", colour) if report["equal"] else paint("DIFFERENT", "FAIL", colour)
    lines = [
        f"{report['matching']} of {report['expected']} expected items match ({report['actual']} in the"
        f" restored set, scope {report['scope']}): {verdict}"
    ]
    for key in report["missing"]:
        lines.append(f"  missing    {key}")
    for key in report["extra"]:
        lines.append(f"  extra      {key}")
    for d in report["different"]:
        lines.append(f"  different  {d['item']}: {', '.join(d['attributes'])}")
    return "\n".join(lines)


def backups(found: list[dict[str, Any]]) -> str:
    if not found:
        return "(no backups)"
    rows = [
        (b["name"], b["created_at"], b["status"], str(b["size_bytes"]), b["type"], b["arn"]) for b in found
    ]
    return table(("NAME", "CREATED", "STATUS", "BYTES", "TYPE", "ARN"), rows)
