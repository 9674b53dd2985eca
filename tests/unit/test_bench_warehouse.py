"""`fincdp bench warehouse`: the next day's data derived from day 1, the report block it owns, and the
process-tree memory it measures."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from fincdp.bench_warehouse import (DAY1, DAY2, LAYERS, MARK_BEGIN, MARK_END, Step, _report, _tree_rss, _write,
                                    derive_next_day)
from fincdp.demo import generate_tenant


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_next_day_is_new_data_on_the_next_date(tmp_path):
    generate_tenant(tmp_path / "d1", "t001", org_ids=["hx_sh"], corpid="ww01", corpsecret="s", scale=200,
                    business_date=DAY1)
    day1, day2 = tmp_path / "d1" / "t001", tmp_path / "d2" / "t001"
    counts = derive_next_day(day1, day2)

    events1 = _lines(day1 / "files" / f"events_{DAY1}.jsonl")
    events2 = _lines(day2 / "files" / f"events_{DAY2}.jsonl")
    assert counts["events"] == len(events2) == len(events1[::10])
    ids1 = {json.loads(line).get("event_id") for line in events1 if line.startswith('{"event_id":"evt_')}
    parsed = [json.loads(line) for line in events2 if line.startswith('{"event_id":"evt_')]
    assert parsed and not ids1 & {e["event_id"] for e in parsed}  # new events, not re-sent ones
    on_a_day = [e["occurred_at"] for e in parsed if str(e.get("occurred_at")).startswith("2026-11-")]
    assert on_a_day and all(t.startswith(f"{DAY2}T") for t in on_a_day)

    # CRM: day 1's records followed by day 2's versions (the local CRM serves the last one)
    contacts1, contacts2 = _lines(day1 / "crm" / "contacts.jsonl"), _lines(day2 / "crm" / "contacts.jsonl")
    assert contacts2[:len(contacts1)] == contacts1
    changed = [json.loads(line) for line in contacts2[len(contacts1):]]
    assert len(changed) == counts["crm_contacts"] == len(contacts1[::100])
    assert all(c["updated_at"].startswith(f"{DAY2}T") and c["title"].startswith("高级") for c in changed)
    calls1, calls2 = _lines(day1 / "crm" / "calls.jsonl"), _lines(day2 / "crm" / "calls.jsonl")
    new_calls = [json.loads(line) for line in calls2[len(calls1):]]
    assert len(new_calls) == len(calls1[::10])
    assert not {c["id"] for c in new_calls} & {json.loads(line)["id"] for line in calls1}
    assert all(c["started_at"].startswith(f"{DAY2}T") for c in new_calls)

    csv2 = _lines(day2 / "files" / f"contacts_{DAY2}.csv")
    assert csv2[0] == _lines(day1 / "files" / f"contacts_{DAY1}.csv")[0] and len(csv2) - 1 == counts["file_contacts"]
    assert (day2 / "wecom").resolve() == (day1 / "wecom").resolve()


def _steps(engine_peak=None):
    return [Step(day, name, "", 12.5, 300.0, engine_peak, 1.2,
                 {"tables": [{"table": "ods.sdk_events", "rows": 100, "seconds": 2.0}]} if name == "files" else {})
            for day in ("full", "incremental") for name in ("pulls", "files", *LAYERS, "snapshots", "tests")]


def render(steps) -> str:
    """The DuckDB report block for these steps, over a tiny made-up data set."""
    manifest = {"counts": {f"files/events_{DAY1}.jsonl": 100, "crm/calls.jsonl": 20}}
    next_counts = {k: 1 for k in ("events", "crm_calls", "crm_contacts", "crm_enterprises", "crm_leads",
                                  "crm_opportunities", "file_contacts")}
    return _report(steps, engine="duckdb", contacts=10, manifest=manifest, next_counts=next_counts,
                   counts={"full": {"ods_events": 99}}, noop_s=4.0, prep={}, workers=2)


def test_report_has_a_row_per_layer_and_replaces_only_its_own_block(tmp_path):
    table = render(_steps())
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    for label in ("ODS: CRM", "ODS: dropped", "dbt run dwd", "dbt run dwm", "dbt run dws", "dbt run ads", "dbt snapshot",
                  "dbt test", "**dbt, all layers**", "**build: ODS landing + dbt**"):
        assert sum(row.startswith(f"| {label}") for row in rows) == 1, label
    assert "| **dbt, all layers** | **75.0** |" in table and "full build under 30 min: dbt 1.2 min (met)" in table

    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n<!-- bench:ingest:begin -->\ningest\n<!-- bench:ingest:end -->\n")
    _write(report, "duckdb", "first")
    report.write_text(report.read_text() + "\n## Another section\n")
    _write(report, "duckdb", "second")
    _write(report, "mysql", "engine")
    text = report.read_text()
    assert text.index("engine") < text.index("## Another section")  # beside the other engines' blocks
    begin, end = MARK_BEGIN.format(engine="duckdb"), MARK_END.format(engine="duckdb")
    assert text.count(begin) == text.count(end) == 1 and "first" not in text
    assert f"{begin}\nsecond\n{end}" in text and "ingest\n<!-- bench:ingest:end -->" in text and "engine" in text


def test_peak_memory_counts_the_whole_process_tree():
    child = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; x = bytearray(200 << 20); "
                              "subprocess.run([sys.executable, '-c', 'x = bytearray(200 << 20); "
                              "import time; time.sleep(3)'])"])
    try:
        deadline, seen = time.monotonic() + 10, 0
        while time.monotonic() < deadline and seen < 400 << 20:
            seen = max(seen, _tree_rss(child.pid))
            time.sleep(0.1)
        assert seen >= 400 << 20  # both processes' 200 MB
    finally:
        child.wait()
