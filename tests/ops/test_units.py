"""Small pure pieces of the operations code: item encoding, comparison, export files, thresholds."""

from __future__ import annotations

import io
import json

import pytest

from vexil.observability.thresholds import AVAILABILITY, DYNAMODB_THROTTLES, LATENCY_P99, Level
from vexil.ops import checks, exportfile, items, render, verify
from vexil.ops.backups import BackupInfo, PitrStatus
from vexil.ops.progress import Progress
from vexil.ops.scrape import Scrape

ITEM = {
    "PK": {"S": "APIKEY#0011"},
    "SK": {"S": "METADATA"},
    "blob": {"B": b"\x00\xffbinary"},
    "blobs": {"BS": [b"\x01", b"\x02"]},
    "names": {"SS": ["b", "a"]},
    "nested": {"M": {"list": {"L": [{"N": "1"}, {"B": b"\x03"}, {"NULL": True}]}}},
}


def test_binary_values_survive_json_and_sets_are_unordered() -> None:
    assert items.wire_item(json.loads(json.dumps(items.json_item(ITEM)))) == ITEM
    reordered = {**ITEM, "names": {"SS": ["a", "b"]}, "blobs": {"BS": [b"\x02", b"\x01"]}}
    assert items.checksum([ITEM]) == items.checksum([reordered])
    assert items.kind_of(ITEM) == "APIKEY"


def test_definitions_scope_ignores_bookkeeping_and_member_order() -> None:
    a = {
        "PK": {"S": "FLAG#local#f"},
        "SK": {"S": "METADATA"},
        "variants": {"S": '{"on":true,"off":false}'},
        "version": {"N": "1"},
        "updatedAt": {"S": "2026-01-01T00:00:00.000000Z"},
    }
    b = {**a, "variants": {"S": '{"off":false,"on":true}'}, "version": {"N": "7"}, "updatedAt": {"S": "x"}}
    history = {"PK": {"S": "FLAG#local#f"}, "SK": {"S": "VERSION#000000000001"}}
    assert verify.compare([a, history], [b], scope="definitions").equal
    exact = verify.compare([a, history], [b])
    assert exact.missing == [("FLAG#local#f", "VERSION#000000000001")]
    assert exact.different[0].attributes == ["updatedAt", "variants", "version"]
    changed = {**b, "variants": {"S": '{"on":false,"off":false}'}}
    assert verify.compare([a], [changed], scope="definitions").different[0].attributes == ["variants"]


def key(pk: str, sk: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


# What a table holds, whether a forced import of an older export of environment `local` removes
# it: from a table's export, everything the export lacks; from a server's export (its environments
# only), only `local`'s.  Adoption records and registry items stay the target's in both cases.
FORCED = [
    # (item, removed after a table's export, removed after a server's export)
    (key("ENV#local", "METADATA"), False, False),  # in the export: overwritten, not removed
    (key("ENV#local", "CHANGE#000000000002"), True, True),
    (key("FLAG#local#b", "METADATA"), True, True),
    (key("FLAG#local#b", "VERSION#000000000001"), True, True),
    (key("FLAG#staging#x", "METADATA"), True, False),
    (key("ENV#staging", "METADATA"), True, False),
    (key("APIKEY#k1", "METADATA"), True, False),
    (key("ENV#local", "ADOPTION"), False, False),
    (key("ENV#local", "REPLICA#vexil-1"), False, False),
]


@pytest.mark.parametrize("whole_table", [True, False], ids=["table-export", "server-export"])
def test_a_forced_import_removes_what_the_export_covers_and_lacks(whole_table: bool) -> None:
    export = [key("ENV#local", "METADATA"), key("FLAG#local#a", "METADATA")]
    table = [item for item, _, _ in FORCED]
    removed = items.replaced(export, table, whole_table=whole_table)
    expected = [item for item, by_table, by_server in FORCED if (by_table if whole_table else by_server)]
    assert sorted(map(items.key_of, removed)) == sorted(map(items.key_of, expected))


def test_export_files_are_checked_on_read(tmp_path) -> None:
    path = tmp_path / "e.json"
    header = exportfile.write(path, exportfile.Export(items=[ITEM], source={"kind": "test"}))
    assert header["itemCount"] == 1 and header["counts"]["APIKEY"] == 1
    assert exportfile.read(path).items == [ITEM]
    document = json.loads(path.read_text())
    document["itemCount"] = 2
    path.write_text(json.dumps(document))
    with pytest.raises(exportfile.ExportError, match="holds 1"):
        exportfile.read(path)
    path.write_text('{"format": "something else"}')
    with pytest.raises(exportfile.ExportError, match="not a vexil-export"):
        exportfile.read(path)
    with pytest.raises(exportfile.ExportError, match="No such file"):
        exportfile.read(tmp_path / "missing.json")


def test_indicator_levels() -> None:
    assert LATENCY_P99.judge(0.05) is Level.OK
    assert LATENCY_P99.judge(0.15) is Level.NOTE
    assert LATENCY_P99.judge(0.3) is Level.WARN
    assert LATENCY_P99.judge(0.6) is Level.CRIT
    assert LATENCY_P99.judge(None) is Level.UNKNOWN
    assert AVAILABILITY.judge(0.9999) is Level.OK
    assert AVAILABILITY.judge(0.997) is Level.NOTE
    assert AVAILABILITY.judge(0.993) is Level.WARN
    assert AVAILABILITY.judge(0.98) is Level.CRIT
    assert DYNAMODB_THROTTLES.judge(0) is Level.OK
    assert DYNAMODB_THROTTLES.judge(1) is Level.WARN


def test_progress_lines_are_throttled_off_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(out, interval=3600)
    progress.start("scanning")
    for n in range(100):
        progress.update(f"scanned {n}")
    progress.done("scanned 100 items")
    lines = out.getvalue().splitlines()
    assert lines[0] == "scanning ..." and lines[-1].startswith("scanned 100 items")
    assert len(lines) <= 3
    quiet = Progress.quiet()
    quiet.start("nothing")  # writes nowhere


def checks_inputs(consumed_per_second: float, throttles: float = 0) -> checks.Inputs:
    now = 1_800_000_000.0
    uptime = 7200.0  # more than the hour of history utilisation is judged from
    text = (
        f"process_start_time_seconds {now - uptime}\n"
        'vexil_dynamodb_consumed_capacity_units_total{operation="Query",kind="read"} '
        f"{consumed_per_second * uptime}\n"
        f'vexil_dynamodb_throttles_total{{operation="Query"}} {throttles}\n'
        'vexil_snapshot_flags{environment="prod"} 10\n'
        'vexil_snapshot_flags_limit{environment="prod"} 10000\n'
    )
    table = {"table": "t", "billing": "PROVISIONED", "readCapacity": 25, "writeCapacity": 25}
    return checks.Inputs(now=now, scrape=Scrape.parse(text), table=table)


def test_capacity_is_consumed_against_provisioned() -> None:
    # The guide's example: 15 of 25 read units is 60 %, the target.
    assert checks.capacity(checks_inputs(15)).status is checks.Status.PASS
    busy = checks.capacity(checks_inputs(20))
    assert busy.status is checks.Status.WARN and "DynamoDB read capacity: 80%" in " ".join(busy.details)
    assert checks.capacity(checks_inputs(24)).status is checks.Status.FAIL
    assert checks.capacity(checks_inputs(5, throttles=3)).status is checks.Status.WARN


def test_weekly_backups_want_pitr_too() -> None:
    now = 1_800_000_000.0
    recent = BackupInfo("arn:1", "t-manual-x", "t", now - 3600, "AVAILABLE", 10, "USER")
    without = checks.Inputs(now=now, backups=[recent], pitr=PitrStatus("t", False, None, None))
    result = checks.weekly_backups(without)
    assert result.status is checks.Status.WARN and "DISABLED" in result.summary
    with_pitr = checks.Inputs(now=now, backups=[recent], pitr=PitrStatus("t", True, now - 86400, now - 300))
    assert checks.weekly_backups(with_pitr).status is checks.Status.PASS
    stale = checks.Inputs(now=now, backups=[], pitr=PitrStatus("t", False, None, None))
    assert checks.recent_backup(stale).status is checks.Status.FAIL
    old_drill = BackupInfo("arn:2", "t-drill-y", "t", now - 40 * 86400, "AVAILABLE", 10, "USER")
    assert checks.dr_test(checks.Inputs(now=now, backups=[old_drill])).status is checks.Status.FAIL


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "s", "n/a"),
        (0.25, "s", "250.0 ms"),
        (2.5, "s", "2.5 s"),
        (0.02, "ratio", "2.00 %"),
        (0.9995, "ratio", "99.95 %"),
        (3.0, "count", "3"),
    ],
)
def test_a_reading_is_printed_one_way_in_every_report(value: float | None, unit: str, text: str) -> None:
    # The one formatter the health table and the checklists' details both print readings with.
    assert render.show(value, unit) == text
