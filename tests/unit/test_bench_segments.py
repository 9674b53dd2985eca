"""The segment benchmark at a tiny size: every segment compiles and runs on the generated tables, and
the report replaces only its own marked block."""
from __future__ import annotations

from fincdp.bench_segments import BEGIN, END, SEGMENTS, run


def test_bench_runs_all_segments_and_writes_its_block_only(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\n<!-- bench:other -->\nkept\n<!-- /bench:other -->\n", encoding="utf-8")
    summary = run(tmp_path / "work", profiles=3000, events=30000, repeat=1, report=report)
    assert [sid for sid, _, _ in summary["segments"]] == list(SEGMENTS) and len(SEGMENTS) == 20
    sizes = {sid: size for sid, size, _ in summary["segments"]}
    assert all(0 < n < 3000 for n in sizes.values()), sizes  # every rule selects some, none selects all
    assert summary["counts"]["dwm.dwm_person_events"] == 30000
    run(tmp_path / "work", profiles=2000, events=20000, repeat=1, report=report)
    text = report.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1 and "2,000 profiles / 20,000 events" in text
    assert "<!-- bench:other -->\nkept\n<!-- /bench:other -->" in text
    assert not list((tmp_path / "work").glob("*.duckdb"))  # the generated file is removed
