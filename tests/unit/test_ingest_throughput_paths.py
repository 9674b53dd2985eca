"""What landing must keep whatever its throughput work changes: timestamps land as the instant parsed
(the epoch too), the newest version of a repeated id wins in input order, payload PII stays redacted."""
from datetime import date, datetime, timezone

import pytest

from assets.ingestion import landing
from assets.ingestion.landing import LandingContext, process
from assets.ingestion.specs import CRM_CONTACTS, EVENTS, FILE_CONTACTS
from fincdp.pii import LocalKeyFileProvider, TenantCipher


@pytest.fixture
def ctx(tmp_path):
    cipher = TenantCipher.for_tenant("t001", LocalKeyFileProvider(tmp_path))
    return LandingContext("t001", frozenset({"hx_sh"}), "Asia/Shanghai", cipher, date(2026, 11, 25), "b1",
                          datetime(2026, 11, 26, tzinfo=timezone.utc))


# --- timestamps and the dedupe of repeated ids -------------------------------------------------------

def test_timestamp_columns_hold_the_parsed_instant(ctx):
    texts = ["1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999+00:00", "0001-01-01T08:00:00+08:00",
             "2026-11-25T10:00:00", "9999-12-31T23:59:59.999999+00:00"]
    records = [{"record_id": f"r{i}", "signed_up_at": t, "_file": "f.csv"} for i, t in enumerate(texts)]
    result = process(FILE_CONTACTS, records, [f"ref{i}" for i in range(len(records))], ctx)
    assert result.table.column("signed_up_at").to_pylist() == [landing._to_timestamp(t, ctx) for t in texts]
    epoch = [{"id": "T1", "name": "n", "group_id": "g", "create_time": 0}]
    from assets.ingestion.specs import WECOM_CORP_TAGS
    table = process(WECOM_CORP_TAGS, epoch, ["t"], ctx).table
    assert table.column("create_time").to_pylist() == [datetime(1970, 1, 1, tzinfo=timezone.utc)]


def test_the_epoch_itself_is_an_ordinary_version_time(ctx):
    # The newest version wins; a version at 1970-01-01T00:00:00Z is older than any later one.
    records = [{"id": "C1", "title": "new", "updated_at": "2026-11-25T10:00:00+08:00"},
               {"id": "C1", "title": "at epoch", "updated_at": "1970-01-01T00:00:00Z"}]
    result = process(CRM_CONTACTS, records, ["a", "b"], ctx)
    assert result.duplicates == 1 and result.table.column("title").to_pylist() == ["new"]


@pytest.mark.parametrize("dups_at", [[], [0], [5, 1030, 2047], list(range(1024, 2048))])
def test_dedupe_keeps_the_chosen_rows_in_order_whatever_blocks_they_fall_in(ctx, dups_at):
    n = 2 * landing.BLOCK_ROWS + 10
    records = [{"id": f"C{i}", "title": f"t{i}", "mobile": f"138{i:08d}",
                "updated_at": "2026-11-25T10:00:00+08:00"} for i in range(n)]
    for i in dups_at:  # an older version of C0: a later row that loses to the earlier, newer one
        records[i] = {"id": "C0" if i else "X", "title": "older", "updated_at": "2026-11-25T09:00:00+08:00"}
    result = process(CRM_CONTACTS, records, [f"r{i}" for i in range(n)], ctx)
    expected = []
    seen = set()
    for i, r in enumerate(records):
        if r["title"] == "older" and r["id"] == "C0":
            continue
        assert r["id"] not in seen
        seen.add(r["id"])
        expected.append((r["id"], r["title"]))
    got = list(zip(result.table.column("_source_id").to_pylist(), result.table.column("title").to_pylist()))
    assert got == expected
    assert result.duplicates == len([i for i in dups_at if i])
    assert result.received == n and result.table.num_rows == n - result.duplicates
    tokens = result.table.column("mobile_token").to_pylist()
    assert all(t is not None for t, (sid, _) in zip(tokens, got) if sid != "X")


def test_events_with_repeated_ids_land_once_with_their_payload_tokens(ctx):
    events = [{"event_id": f"e{i % 700}", "tenant_id": "t001", "org_id": "hx_sh",
               "occurred_at": f"2026-11-25T10:{i % 60:02d}:00+08:00", "source": "web", "type": "web.view.page",
               "payload": {"mobile": "13812345678", "n": i}, "_file": "events.jsonl"} for i in range(2100)]
    result = process(EVENTS, events, [f"r{i}" for i in range(len(events))], ctx)
    ids = result.table.column("_source_id").to_pylist()
    assert sorted(ids) == sorted({e["event_id"] for e in events}) and result.duplicates == 2100 - 700
    assert set(result.table.column("payload_phone_is_mobile").to_pylist()) == {True}
    for row in result.table.slice(0, 5).to_pylist():
        assert row["_record_hash"] == ctx.cipher.record_hash(row["_raw"].encode())
        assert "13812345678" not in row["_raw"] and "13812345678" not in row["payload"]


# --- JSON text stored with zstd ------------------------------------------------------------------------

class _Tenant:
    id, org_ids, timezone = "t001", frozenset({"hx_sh"}), "Asia/Shanghai"


def test_ods_json_text_is_stored_with_zstd_and_reads_back(tmp_path, ctx):
    import duckdb

    from assets.ingestion import store
    from resources.warehouse import WarehouseSession

    con = duckdb.connect(str(tmp_path / "t001.duckdb"))
    con.execute("create schema ods")
    session = WarehouseSession(_Tenant(), con)
    batch = store.start_batch(session, EVENTS, date(2026, 11, 25), kind="file", detail="x", replace_partition=False)
    events = [{"event_id": f"e{i}", "tenant_id": "t001", "org_id": "hx_sh", "occurred_at": "2026-11-25T10:00:00+08:00",
               "source": "web", "type": "web.view.page", "ua": "Mozilla/5.0", "payload": {"page": f"p{i % 7}"},
               "_file": "events.jsonl"} for i in range(5000)]
    processed = process(EVENTS, events, [f"r{i}" for i in range(len(events))], ctx)
    store.write_page(session, batch, processed, ctx.cipher, next_cursor=None)
    con.execute("checkpoint")
    compression = dict(con.execute(
        "select column_name, string_agg(distinct compression, ',') from pragma_storage_info('ods.sdk_events') "
        "where segment_type = 'VARCHAR' and column_name in ('_raw', 'payload', 'ua', 'event_id') "
        "group by column_name").fetchall())
    assert compression["_raw"] == "ZSTD" and compression["payload"] == "ZSTD"
    assert "ZSTD" not in compression["ua"] and "ZSTD" not in compression["event_id"]
    stored = con.execute("select _raw, payload from ods.sdk_events order by event_id limit 1").fetchall()[0]
    assert stored == tuple(processed.table.sort_by("event_id").select(["_raw", "payload"]).slice(0, 1).to_pylist()[0].values())
    assert store.zstd_columns(FILE_CONTACTS) == ["_raw"]
    assert store.ciphertext_columns(FILE_CONTACTS) == ["mobile_enc", "email_enc"]
    stored_as = dict(con.execute(
        "select column_name, string_agg(distinct compression, ',') from pragma_storage_info('ods.sdk_events') "
        "where segment_type = 'BLOB' group by column_name").fetchall())
    assert stored_as and set(stored_as.values()) == {"Uncompressed"}  # random bytes: no analysis spent
    assert sorted(stored_as) == sorted(store.ciphertext_columns(EVENTS))


def test_the_writer_stores_only_the_newest_version_and_skips_events_landed_on_another_date(tmp_path, ctx):
    """Superseded rows stay in the landed table and are skipped as they are inserted: what is stored is
    the batch (one row per id, its newest version), less events landed on an earlier date."""
    import duckdb

    from assets.ingestion import store
    from resources.warehouse import WarehouseSession

    con = duckdb.connect(str(tmp_path / "t001.duckdb"))
    con.execute("create schema ods")
    session = WarehouseSession(_Tenant(), con)

    def event(i: int, hour: int, page: str) -> dict:
        return {"event_id": f"e{i}", "tenant_id": "t001", "org_id": "hx_sh", "source": "web", "type": "web.view.page",
                "occurred_at": f"2026-11-2{5 if hour >= 0 else 4}T{abs(hour):02d}:00:00+08:00",
                "payload": {"page": page}, "_file": "events.jsonl"}

    def load(day: date, events: list[dict]):
        batch = store.start_batch(session, EVENTS, day, kind="file", detail=str(day), replace_partition=False)
        day_ctx = store.landing_context(session, ctx.cipher, batch)
        processed = process(EVENTS, events, [f"r{i}" for i in range(len(events))], day_ctx)
        store.write_page(session, batch, processed, ctx.cipher, next_cursor=None)
        return batch, processed

    load(date(2026, 11, 24), [event(1, -9, "day before")])
    day = [event(2, 10, "old"), event(1, 11, "again"), event(2, 12, "new"), event(3, 9, "newer"),
           event(3, 8, "older, later in the file"), event(4, 9, "only")]
    batch, processed = load(date(2026, 11, 25), day)
    assert processed.duplicates == 2 and processed.rows.num_rows == 6  # superseded rows kept for the writer
    assert processed.table.column("_source_id").to_pylist() == ["e1", "e2", "e3", "e4"]
    stored = con.execute("select _business_date, event_id, json_extract_string(payload, '$.page') "
                         "from ods.sdk_events order by event_id").fetchall()
    assert stored == [(date(2026, 11, 24), "e1", "day before"), (date(2026, 11, 25), "e2", "new"),
                      (date(2026, 11, 25), "e3", "newer"), (date(2026, 11, 25), "e4", "only")]
    assert batch.duplicates == 3  # two merged in the batch, one landed on another date
