"""The ingestion benchmark's report: medians, same-run ratios and the machine load the figures had."""
from fincdp.bench import _report


def _runs(kind: str, rows: int, seconds: list[float], loads: list[float]) -> list[dict]:
    return [{"kind": kind, "rows": rows, "seconds": s, "peak_mb": 100.0, "load1": load}
            for s, load in zip(seconds, loads)]


def test_report_gives_medians_ratios_and_the_load_range():
    results = {
        "duckdb_read_csv": _runs("duckdb_read_csv", 1000, [0.01, 0.02, 0.04], [1.0, 2.0, 3.0]),
        "file_contacts": _runs("file_contacts", 1000, [0.04, 0.05, 0.2], [2.5, 2.5, 2.5]),
        "duckdb_read_json": _runs("duckdb_read_json", 2000, [0.1, 0.1, 0.1], [0.5, 1.0, 1.0]),
        "file_events": _runs("file_events", 2000, [0.2, 0.4, 0.8], [4.0, 4.0, 6.25]),
        "crm_client_only": _runs("crm_client_only", 1000, [0.1, 0.1, 0.1], [1.0, 1.0, 1.0]),
        "crm_contacts_pull": _runs("crm_contacts_pull", 1000, [0.2, 0.2, 0.2], [1.0, 1.0, 1.0]),
        "crm_client_only_limited": _runs("crm_client_only_limited", 1000, [0.5, 0.5, 0.6], [1.0, 1.0, 1.0]),
        "crm_contacts_pull_limited": _runs("crm_contacts_pull_limited", 1000, [0.5, 0.6, 0.6], [1.0, 1.0, 1.0]),
    }
    text = _report(results, contacts=1000, events_per_contact=2.0, repeat=3, workers=2)
    assert "1-minute load average 0.5-6.2 over the steps" in text
    contacts = next(line for line in text.splitlines() if line.startswith("| file: contacts"))
    # median rate 20,000 rows/s against read_csv's median 50,000: 40 %
    assert "| 20,000 |" in contacts and "`duckdb_read_csv` | 50,000 | 40% |" in contacts
    events = next(line for line in text.splitlines() if line.startswith("| file: events"))
    assert "| 5,000 |" in events and "| 20,000 | 25% |" in events
    limited = next(line for line in text.splitlines() if line.startswith("| API: the same pull from a server allowing"))
    assert "| 1,667 |" in limited and "`crm_client_only_limited` | 2,000 | 83% |" in limited
