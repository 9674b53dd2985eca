"""ODS assets against the local servers: windows, resume, files once, dead letters, replay, isolation."""
from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from assets.ingestion import store
from assets.ingestion.ods import ASSETS, CRM_ASSETS, FILE_ASSETS
from resources.crm import CrmApi
from tests.conftest import BUSINESS_DATE

MOBILES = ["13812340001", "13812340002", "13812340003", "13812340004", "13812340005", "13812340006"]


def _contact(i: int, hour: int, **extra) -> dict:
    return {"id": f"C{i}", "enterprise_id": "E1", "name": f"联系人{i}", "mobile": MOBILES[i % len(MOBILES)],
            "email": f"user{i}@corp-example.com", "title": "经理",
            "updated_at": f"2026-11-25T{hour:02d}:00:00+08:00", **extra}


def write_tenant_data(data_dir: Path, tenant: str, *, contacts: list[dict], leads: list[dict] = ()) -> None:
    crm = data_dir / tenant / "crm"
    crm.mkdir(parents=True, exist_ok=True)
    (crm / "contacts.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in contacts))
    (crm / "leads.jsonl").write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in leads))


def drop(platform, tenant: str, name: str, text: str) -> Path:
    folder = platform.tenants().get(tenant).sources.files.path()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def ledger(platform, tenant: str, entity: str) -> list[tuple]:
    with platform.session(tenant) as s:
        return s.rows(f"select kind, status, received, landed, dead_lettered from {store.BATCHES} "
                      "where entity = ? order by started_at", [entity])


@pytest.fixture
def crm_platform(platform):
    contacts = [_contact(i, 1 + i) for i in range(12)] + [_contact(99, 9, updated_at="2026-11-24T23:00:00+08:00")]
    leads = [{"id": "L1", "status": "new", "updated_at": "2026-11-25T10:00:00+08:00"},
             {"id": "L2", "status": "won", "updated_at": "2026-11-25T11:00:00+08:00"}]  # not a lead status
    write_tenant_data(platform.data_dir, "t001", contacts=contacts, leads=leads)
    write_tenant_data(platform.data_dir, "t002", contacts=[_contact(1, 5, name="别的租户")])
    platform.start_sources()
    return platform


def test_crm_pull_lands_the_business_date_and_rerun_is_idempotent(crm_platform):
    p = crm_platform
    result = p.materialize("t001", CRM_ASSETS)
    meta = result.asset_materializations_for_node("ods__crm_contacts")[0].metadata
    assert meta["dagster/row_count"].value == 12 and meta["received"].value == 12
    leads_meta = result.asset_materializations_for_node("ods__crm_leads")[0].metadata
    assert (leads_meta["received"].value, leads_meta["landed"].value, leads_meta["dead_lettered"].value) == (2, 1, 1)

    p.materialize("t001", CRM_ASSETS)
    with p.session("t001") as s:
        assert s.scalar("select count(*) from ods.crm_contacts") == 12
        assert s.scalar("select count(distinct _source_id) from ods.crm_contacts") == 12
        dead = s.rows(f"select record_ref, field, error_type, status from {store.DEAD_LETTERS} order by received_at")
    # The re-run re-received the bad lead: the first dead letter is superseded, one stays open.
    assert dead == [("id=L2", "status", "invalid_enum", "superseded"), ("id=L2", "status", "invalid_enum", "open")]
    for kind, status, received, landed, dead_count in ledger(p, "t001", "leads"):
        assert received == landed + dead_count


def test_a_failed_pull_resumes_after_its_last_committed_page(crm_platform):
    p = crm_platform
    p.start_sources(crm_options={"fail_every": 3})  # every third API request answers 503
    contacts = [a for a in CRM_ASSETS if a.key.path[-1] == "crm_contacts"]
    small_pages = {"crm": CrmApi(page_size=4, max_attempts=1, max_backoff_s=0.1)}
    failed = p.materialize("t001", contacts, resources=small_pages, raise_on_error=False)
    assert not failed.success
    with p.session("t001") as s:
        assert s.scalar("select count(*) from ods.crm_contacts") == 8  # two pages committed
    resumed = p.materialize("t001", contacts, resources={"crm": CrmApi(page_size=4, max_backoff_s=0.1)})
    meta = resumed.asset_materializations_for_node("ods__crm_contacts")[0].metadata
    assert meta["resumed"].value is True
    assert meta["dagster/row_count"].value == 12 and meta["received"].value == 12
    assert [row[:3] for row in ledger(p, "t001", "contacts")] == [("pull", "succeeded", 12)]


CSV = ("record_id,name,mobile,email,company,title,city,signed_up_at\n"
       "r1,张伟,138 1234 0001,ZW@corp-example.com,华信,总监,上海,2026-11-25T09:00:00+08:00\n"
       "r2,李娜,13812340002,,华信,经理,上海,not-a-time\n"
       "r1,张伟,138 1234 0001,ZW@corp-example.com,华信,总监,上海,2026-11-25T09:30:00+08:00\n"
       "r3,王芳,13812340003,wf@corp-example.com,远航,专员,北京,2026-11-25T10:00:00+08:00\n")


def _event(i: int, **extra) -> str:
    record = {"event_id": f"evt_{i}", "tenant_id": "t001", "org_id": "hx_sh", "one_id": None,
              "occurred_at": "2026-11-25T10:00:00+08:00", "source": "web", "type": "web.view.page",
              "ip": "10.0.0.1", "ua": "UA", "payload": {"url": "/p", "mobile": MOBILES[i % 6]}, **extra}
    return json.dumps(record, ensure_ascii=False) + "\n"


def test_files_load_once_with_bad_rows_dead_lettered(platform):
    p = platform
    drop(p, "t001", "contacts_2026-11-25.csv", CSV)
    drop(p, "t001", "events_20261125.jsonl",
         _event(1) + _event(2, tenant_id="t002") + "{not json\n" + _event(3, type="BadType") + _event(1) + _event(4))
    first = p.materialize("t001", FILE_ASSETS)
    contacts = first.asset_materializations_for_node("ods__file_contacts")[0].metadata
    events = first.asset_materializations_for_node("ods__sdk_events")[0].metadata
    assert (contacts["received"].value, contacts["landed"].value, contacts["dead_lettered"].value) == (4, 3, 1)
    assert contacts["dagster/row_count"].value == 2 and contacts["duplicates_merged"].value == 1
    assert (events["received"].value, events["landed"].value, events["dead_lettered"].value) == (6, 3, 3)
    assert events["dagster/row_count"].value == 2
    with p.session("t001") as s:
        dead = s.rows(f"select record_ref, field, error_type from {store.DEAD_LETTERS} order by record_ref")
        times = s.rows("select record_id, signed_up_at from ods.file_contacts order by record_id")
    assert dead == [("contacts_2026-11-25.csv:3", "signed_up_at", "invalid_type"),
                    ("events_20261125.jsonl:2", "tenant_id", "tenant_mismatch"),
                    ("events_20261125.jsonl:3", None, "parse"),
                    ("events_20261125.jsonl:4", "type", "schema")]
    assert times[0][1].hour == 1 and times[0][1].minute == 30  # the newer duplicate row won

    again = p.materialize("t001", FILE_ASSETS)
    statuses = [f["status"] for f in again.asset_materializations_for_node("ods__file_contacts")[0]
                .metadata["files"].value]
    assert statuses == ["already loaded"]
    with p.session("t001") as s:
        assert s.scalar(f"select count(*) from {store.DEAD_LETTERS}") == 4
        assert s.scalar("select count(*) from ods.sdk_events") == 2


def test_an_unreadable_file_is_rejected_whole_and_the_others_still_load(platform):
    p = platform
    drop(p, "t001", "contacts_2026-11-25.csv", "name,mobile\n张伟,13812340001\n")  # no record_id column
    drop(p, "t001", "contacts_2026-11-25_b.csv", CSV)
    result = p.materialize("t001", FILE_ASSETS)
    files = {f["file"]: f["status"] for f in result.asset_materializations_for_node("ods__file_contacts")[0]
             .metadata["files"].value}
    assert files == {"contacts_2026-11-25.csv": "rejected", "contacts_2026-11-25_b.csv": "loaded"}
    with p.session("t001") as s:
        assert s.rows(f"select record_ref, error_type, reason from {store.DEAD_LETTERS} "
                      "where error_type = 'file_unreadable'") == [
            ("contacts_2026-11-25.csv", "file_unreadable",
             "contacts_2026-11-25.csv: header lacks required column(s) record_id")]


def test_dead_letters_replay_after_a_config_fix_and_replay_is_idempotent(platform, tmp_path, monkeypatch):
    from fincdp import settings
    from fincdp.cli import main

    p = platform
    tenants_file = tmp_path / "tenants.yaml"
    tenants_file.write_text(settings.tenants_file().read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("FINCDP_TENANTS", str(tenants_file))
    drop(p, "t001", "events_2026-11-25.jsonl", _event(1) + _event(2, org_id="hx_gz") + _event(3, org_id="hx_gz"))
    p.materialize("t001", FILE_ASSETS)
    with p.session("t001") as s:
        assert s.scalar("select count(*) from ods.sdk_events") == 1
    # The fix: the Guangzhou branch is added as an org of the tenant.
    tenants_file.write_text(tenants_file.read_text(encoding="utf-8").replace(
        "- {id: hx_bj, name: 北京分公司}", "- {id: hx_bj, name: 北京分公司}\n      - {id: hx_gz, name: 广州分公司}"),
        encoding="utf-8")
    assert main(["dead-letters", "replay", "--tenant", "t001", "--date", "2026-11-25"]) == 0
    assert main(["dead-letters", "replay", "--tenant", "t001", "--date", "2026-11-25"]) == 0
    with p.session("t001") as s:
        assert s.scalar("select count(*) from ods.sdk_events") == 3
        assert s.rows(f"select status, count(*) from {store.DEAD_LETTERS} group by status") == [("replayed", 2)]


def test_a_run_for_one_tenant_never_touches_another(crm_platform):
    p = crm_platform
    drop(p, "t001", "events_2026-11-25.jsonl", _event(1) + _event(2, tenant_id="t002"))
    p.materialize("t002", CRM_ASSETS)
    t002_file = p.tenants().get("t002").duckdb_path
    before = t002_file.read_bytes()
    p.materialize("t001", ASSETS)
    assert t002_file.read_bytes() == before
    with p.session("t002") as s:
        assert s.rows("select name from ods.crm_contacts") == [("别的租户",)]
        assert not s.table_exists("ods.sdk_events")
        tenants_seen = {r[0] for t in ("ods.crm_contacts", "ods.crm_enterprises") if s.table_exists(t)
                        for r in s.rows(f"select distinct _tenant_id from {t}")}
    assert tenants_seen == {"t002"}
    with p.session("t001") as s:
        # The session sees only its own tenant's database file.
        assert {r[0] for r in s.rows("select database_name from duckdb_databases() where not internal")} == {"t001"}
        assert s.scalar("select count(*) from ods.sdk_events") == 1


def test_no_raw_personal_data_in_tables_or_run_logs(crm_platform):
    p = crm_platform
    drop(p, "t001", "contacts_2026-11-25.csv", CSV)
    drop(p, "t001", "events_2026-11-25.jsonl", _event(1) + _event(2, ip="not-an-ip"))
    with dg.instance_for_test() as instance:
        p.materialize("t001", ASSETS, instance=instance)
        logs = " ".join(str(record) for record in instance.all_logs(
            instance.get_runs()[0].run_id))
    raw_values = MOBILES + [m[:3] + " " + m[3:7] for m in MOBILES] + ["corp-example.com", "zw@", "ZW@"]
    with p.session("t001") as s:
        for schema, table in s.rows("select table_schema, table_name from information_schema.tables"):
            columns = [c for c, t in s.columns(f"{schema}.{table}").items() if "VARCHAR" in t or "[]" in t]
            for column in columns:
                text = " ".join(str(r[0]) for r in s.rows(f'select "{column}" from {schema}.{table}'))
                for raw in raw_values:
                    assert raw not in text, f"raw PII in {schema}.{table}.{column}"
    for raw in raw_values:
        assert raw not in logs


def _land_and_read(p, contacts, events, workers: int) -> tuple:
    """Load the two files into t001's ODS: (ledger per file, ODS rows without ciphertexts and batch
    stamps, open dead letters, the batches' counts); the ODS tables are emptied again for the next load."""
    from assets.ingestion import ods
    from assets.ingestion.files import parse_file_name
    from assets.partitions import TenantDay
    from resources.pii import PiiVault

    tenant, cipher = p.tenants().get("t001"), PiiVault().cipher("t001")
    enc = ("mobile_enc", "email_enc", "ip_enc", "payload_phone_enc", "payload_email_enc", "payload_id_number_enc")
    with p.session("t001", read_only=False) as s:
        threads = s.scalar("select current_setting('threads')")
        results = [ods.load_file(s, cipher, parse_file_name(path), TenantDay(tenant, BUSINESS_DATE),
                                 reload=True, workers=workers) for path in (contacts, events)]
        assert s.scalar("select current_setting('threads')") == threads  # one thread only while loading
        tables = {t: [{k: v for k, v in row.items() if k not in enc + ("_batch_id", "_ingested_at")}
                      for row in s.arrow(f"select * from {t} order by _source_id").to_pylist()]
                  for t in ("ods.file_contacts", "ods.sdk_events")}
        dead = s.rows(f"select record_ref, field, error_type, reason from {store.DEAD_LETTERS} "
                      "where status = 'open' order by record_ref")
        counts = s.rows(f"select entity, received, landed, dead_lettered, duplicates from {store.BATCHES} "
                        "where status = 'succeeded' order by started_at desc limit 2")
        for t in ("ods.file_contacts", "ods.sdk_events"):
            s.execute(f"delete from {t}")
    return [{k: r[k] for k in ("status", "received", "landed", "dead_lettered")} for r in results], \
        tables, dead, counts


def test_large_files_land_the_same_in_worker_processes(platform, monkeypatch):
    from assets.ingestion import ods

    p = platform
    monkeypatch.setattr(ods, "FILE_CHUNK", 2)  # many chunks: duplicates within and across them
    contacts = drop(p, "t001", "contacts_2026-11-25.csv", CSV + CSV.split("\n", 1)[1])
    events = drop(p, "t001", "events_2026-11-25.jsonl",
                  _event(1) + "\n{not json\n" + _event(2, tenant_id="t002") + _event(1) + _event(3) + _event(4))
    in_process = _land_and_read(p, contacts, events, 1)
    assert in_process[0] == [{"status": "loaded", "received": 8, "landed": 6, "dead_lettered": 2},
                             {"status": "loaded", "received": 6, "landed": 4, "dead_lettered": 2}]
    assert _land_and_read(p, contacts, events, 2) == in_process


def test_chunks_landed_in_parts_by_workers_equal_chunks_landed_whole(platform, monkeypatch, tmp_path):
    """Parts of a chunk land in worker processes (handed over in spool files) and merge where they are
    written: rows, dedupe, ledger and dead letters are those of each chunk landed whole, and no spool
    file is left behind, nor a dead load's spool directory."""
    import os

    from assets.ingestion import ods

    p = platform
    spool_root = tmp_path / "spool"
    spool_root.mkdir()
    monkeypatch.setattr(ods, "SPOOL_ROOT", str(spool_root))
    stale = spool_root / "fincdp-landing-999999999-x"  # left by a load whose process died
    stale.mkdir()
    (stale / "part.arrow").write_bytes(b"x")
    mine = spool_root / f"fincdp-landing-{os.getpid()}-y"  # a load of a process that still runs
    mine.mkdir()
    monkeypatch.setattr(ods, "FILE_CHUNK", 3)  # duplicates within a chunk's parts and across chunks
    contacts = drop(p, "t001", "contacts_2026-11-25.csv", CSV + CSV.split("\n", 1)[1] + "r9,多,余,格,子,a,b,c,d,e\n")
    events = drop(p, "t001", "events_2026-11-25.jsonl",
                  _event(1) + "\n{not json\n" + _event(2, tenant_id="t002") + _event(1) + _event(3) + _event(4)
                  + _event(5) + _event(3))

    def load(workers: int, part: int, here: int) -> tuple:
        monkeypatch.setattr(ods, "FILE_PART", part)
        monkeypatch.setattr(ods, "FILE_PARTS_HERE", here)
        return _land_and_read(p, contacts, events, workers)

    whole = load(1, 3, 1)  # each chunk landed whole, in this process
    assert whole[0] == [{"status": "loaded", "received": 9, "landed": 6, "dead_lettered": 3},
                        {"status": "loaded", "received": 8, "landed": 6, "dead_lettered": 2}]
    assert ("contacts_2026-11-25.csv:10", None, "schema") in [d[:3] for d in whole[2]]  # the row with extra cells
    assert load(2, 1, 1) == whole  # parts of one record: the first here, the rest in the workers
    assert load(2, 2, 0) == whole  # parts of two records across chunk ends, all in the workers
    assert sorted(path.name for path in spool_root.iterdir()) == [mine.name]


def test_a_file_that_fails_mid_chunk_commits_the_parts_read_before_the_failure(platform, monkeypatch, tmp_path):
    from assets.ingestion import ods
    from assets.ingestion.files import parse_file_name
    from assets.partitions import TenantDay
    from resources.pii import PiiVault

    p = platform
    spool_root = tmp_path / "spool"
    spool_root.mkdir()
    monkeypatch.setattr(ods, "SPOOL_ROOT", str(spool_root))
    monkeypatch.setattr(ods, "FILE_CHUNK", 50)
    monkeypatch.setattr(ods, "FILE_PART", 20)
    rows = [f"r{i},name{i},1381234{i % 10000:04d},u{i}@corp-example.com,c,t,上海,2026-11-25T09:00:00+08:00\n"
            for i in range(400)]
    path = drop(p, "t001", "contacts_2026-11-25.csv", "")
    # Text is decoded 8 KB at a time: the bad byte, far down the file, fails the read mid-way.
    path.write_bytes((CSV.split("\n", 1)[0] + "\n" + "".join(rows[:300])).encode() + b"r300,\xff\n"
                     + "".join(rows[301:]).encode())
    tenant = p.tenants().get("t001")
    with p.session("t001", read_only=False) as s:
        with pytest.raises(UnicodeDecodeError):
            ods.load_file(s, PiiVault().cipher("t001"), parse_file_name(path), TenantDay(tenant, BUSINESS_DATE),
                          workers=1)
        [(status, cursor, received, landed, dead)] = s.rows(
            f"select status, cursor, received, landed, dead_lettered from {store.BATCHES}")
        assert status == "failed" and received == landed + dead == int(cursor)
        assert 0 < received < 300 and received % 50 != 0  # whole chunks and the parts read after them
        assert s.scalar("select count(*) from ods.file_contacts") == landed
    assert list(spool_root.iterdir()) == []


def test_pages_commit_in_groups_and_a_failed_write_rolls_back_to_the_last_commit(platform, monkeypatch):
    from assets.ingestion.landing import process
    from assets.ingestion.specs import CRM_CONTACTS
    from resources.pii import PiiVault

    p = platform
    cipher = PiiVault().cipher("t001")
    with p.session("t001", read_only=False) as s:
        batch = store.start_batch(s, CRM_CONTACTS, BUSINESS_DATE, kind="pull", replace_partition=True)
        ctx = store.landing_context(s, cipher, batch)

        def page(i: int):
            return process(CRM_CONTACTS, [_contact(i, 1)], [f"id=C{i}"], ctx)

        def committed() -> tuple:
            with p.session("t001", read_only=False) as reader:  # another connection: committed rows only
                return (reader.scalar("select count(*) from ods.crm_contacts"),
                        reader.rows(f"select cursor, received from {store.BATCHES}")[0])

        with pytest.raises(RuntimeError, match="source down"):
            with store.PageWriter(s, batch, cipher, commit_rows=2) as writer:
                writer.write(page(1), next_cursor="after-1")
                writer.write(page(2), next_cursor="after-2")  # the group commits
                writer.write(page(3), next_cursor="after-3")
                raise RuntimeError("source down")  # the source fails: page 3 is kept
        assert committed() == (3, ("after-3", 3))

        insert = s.insert
        monkeypatch.setattr(s, "insert", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
        with pytest.raises(OSError, match="disk full"):
            with store.PageWriter(s, batch, cipher, commit_rows=10) as writer:
                monkeypatch.setattr(s, "insert", insert)
                writer.write(page(4), next_cursor="after-4")
                monkeypatch.setattr(s, "insert", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
                writer.write(page(5), next_cursor="after-5")  # writing fails: pages 4-5 roll back
        assert committed() == (3, ("after-3", 3))
        assert (batch.received, batch.cursor) == (3, "after-3")
