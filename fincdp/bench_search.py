"""`fincdp bench search`: bulk-index N profile documents (default 1M) into the local
Elasticsearch-speaking server and publish them by alias swap, with a reader hitting the alias.

Same-run baselines over the same documents: JSON serialisation alone (the client's serializer), and
a raw `parallel_bulk` of the already-built documents into a plain index (no warehouse read, no
document building, no swap). During the second publish a reader thread counts the alias and looks up
a person by OneID in a loop; every answer must be the full document count (never 404, 0 or partial).
"""
from __future__ import annotations

import os
import platform
import random
import shutil
import sys
import multiprocessing
import time
from datetime import date, datetime, timezone
from pathlib import Path

MARK_BEGIN, MARK_END = "<!-- bench:search -->", "<!-- /bench:search -->"
TENANT = "t001"
DAY = date(2026, 11, 25)


def _prepare(tenant, docs: int) -> None:
    """A golden record per person and ~1.3 CRM contacts each in the tenant's DuckDB warehouse, in
    the shape the dbt models leave (names are stand-ins made of CJK characters)."""
    import duckdb

    tenant.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(tenant.duckdb_path))
    try:
        con.execute("create schema if not exists dwm; create schema if not exists ads")
        con.execute(f"""
            create or replace table dwm.dwm_person_golden as
            select printf('P%09d', i) as one_id, 1 + i % 3 as source_records,
                   chr((19968 + (i * 7919) % 20000)::int) || chr((19968 + (i * 104729) % 20000)::int) ||
                       chr((19968 + (i * 15485863) % 20000)::int) as person_name,
                   'crm_contact' as person_name_source,
                   ['总经理', '财务总监', '投资经理', '董事长'][1 + i % 4] as title, 'crm_contact' as title_source,
                   'tok' || i as mobile_token, 'crm_contact' as mobile_token_source,
                   null::varchar as email_token, null::varchar as email_token_source,
                   '企业' || (i % 50000) || '有限公司' as company_name, 'crm_contact' as company_name_source,
                   'E' || (i % 50000) as crm_enterprise_id, 'crm_contact' as crm_enterprise_id_source,
                   date '{DAY}' as as_of_date
            from range({docs}) t(i)""")
        con.execute(f"""
            create or replace table ads.ads_person_360 as
            select printf('C%010d', c) as contact_id, printf('P%09d', c % {docs}) as one_id,
                   null::varchar as contact_name, '总经理' as title, 'F' as gender,
                   'E' || (c % 50000) as enterprise_id, '企业' || (c % 50000) || '有限公司' as enterprise_name,
                   c % 3 = 0 as has_mobile, c % 5 = 0 as has_email,
                   c % 4 as calls_7d, c % 9 as calls_30d, c % 31 as calls_all, c % 6 as events_7d,
                   c % 20 as events_30d, c % 77 as events_all, c % 2 as leads,
                   (c % 7 = 0)::int as converted_leads,
                   date '{DAY}' - (c % 60)::int as last_active_on, date '{DAY}' as as_of_date
            from range({docs + docs * 3 // 10}) t(c)""")
    finally:
        con.close()


def _reader(url: str, alias: str, sample: list[str], stop, results, pause_s: float, count_every_s: float) -> None:
    """Until told to stop: get a random person by OneID through the alias (must be found) and, every
    `count_every_s`, count the alias (must be the full count). noida-db answers `count` by a scan, so
    counting in a tight loop would starve the loader; a lookup by id is cheap."""
    from elasticsearch import Elasticsearch

    rnd, reads, next_count = random.Random(11), [], 0.0
    with Elasticsearch(url, request_timeout=600) as es:
        while not stop.is_set():
            try:
                doc = es.get(index=alias, id=rnd.choice(sample))
                n = None
                if time.monotonic() >= next_count:
                    n = es.count(index=alias)["count"]
                    next_count = time.monotonic() + count_every_s
                reads.append((n, int(doc["found"]), doc["_index"]))
            except Exception as exc:  # a missing alias, index or document is exactly what must not happen
                reads.append((repr(exc), 0, None))
            time.sleep(pause_s)
    results.put(reads)


def client_side(tenant, docs: int) -> dict:
    """The platform's side alone at `docs` people, no server: warehouse read, document building, and
    building + JSON serialising as the bulk helper would (streamed, nothing kept)."""
    from elastic_transport import JsonSerializer

    from assets.search import profile_documents, profile_rows
    from resources.warehouse import Warehouse

    out: dict = {"docs": docs}
    t = time.perf_counter()
    _prepare(tenant, docs)
    out["prepare_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with Warehouse().query(tenant) as session:
        rows = profile_rows(session)
    out["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    n = sum(1 for _ in profile_documents(rows))
    out["build_s"] = time.perf_counter() - t
    serializer = JsonSerializer()
    t = time.perf_counter()
    for doc in profile_documents(rows):
        serializer.dumps({k: v for k, v in doc.items() if k != "_id"})
    out["build_serialize_s"] = time.perf_counter() - t
    assert n == docs, (n, docs)
    print(f"client side at {docs:,}: read {out['read_s']:.1f}s, build {out['build_s']:.1f}s, "
          f"build + serialise {out['build_serialize_s']:.1f}s", flush=True)
    return out


def _peak_mb(server) -> int | None:
    try:
        for line in open(f"/proc/{server._process.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except (OSError, AttributeError):
        return None
    return None


def _rate(n: int, seconds: float) -> int:
    return round(n / seconds) if seconds > 0 else 0


def run(work: Path, *, docs: int = 1_000_000, url: str | None = None, threads: int = 2, chunk_size: int = 20_000,
        pause_s: float = 0.05, count_every_s: float = 5.0, client_docs: int = 0,
        report: Path | None = None) -> dict:
    work = work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["FINCDP_HOME"] = str(work / "home")  # a throwaway warehouse for the bench tenant
    from elastic_transport import JsonSerializer
    from elasticsearch import helpers

    from assets.search import PROFILES, profile_documents, profile_rows
    from fincdp.search_server import LocalSearchServer
    from fincdp.tenants import current_tenants
    from resources.search import SearchIndex
    from resources.warehouse import Warehouse

    tenant = current_tenants().get(TENANT)
    server = None
    if not url:
        server = LocalSearchServer(work / "es").start()
        url = server.url
    search = SearchIndex(url=url, thread_count=threads, chunk_size=chunk_size, keep_previous=1,
                         request_timeout_s=600)
    out: dict = {"docs": docs, "threads": threads, "chunk_size": chunk_size, "pause_s": pause_s,
                 "count_every_s": count_every_s,
                 "server": f"noida-db {server.version}" if server else url}
    load_start = os.getloadavg()[0]
    try:
        if client_docs:
            out["client"] = client_side(tenant, client_docs)
        t = time.perf_counter()
        _prepare(tenant, docs)
        out["prepare_s"] = time.perf_counter() - t
        print(f"warehouse prepared: {docs:,} people in {out['prepare_s']:.1f}s", flush=True)

        t = time.perf_counter()
        with Warehouse().query(tenant) as session:
            rows = profile_rows(session)
        out["read_s"] = time.perf_counter() - t
        t = time.perf_counter()
        built = list(profile_documents(rows))
        out["build_s"] = time.perf_counter() - t
        assert len(built) == docs, (len(built), docs)
        print(f"read {out['read_s']:.1f}s, documents built {out['build_s']:.1f}s", flush=True)

        serializer = JsonSerializer()
        t = time.perf_counter()
        for doc in built:
            serializer.dumps({k: v for k, v in doc.items() if k != "_id"})
        out["serialize_s"] = time.perf_counter() - t

        with search.client(tenant) as es:
            raw = f"{tenant.es_index_prefix}benchraw"
            es.options(ignore_status=404).indices.delete(index=raw)
            es.indices.create(index=raw, mappings=PROFILES.mappings,
                              settings={**PROFILES.settings, "refresh_interval": "-1"})
            t = time.perf_counter()
            ok = sum(1 for good, _ in helpers.parallel_bulk(
                es, ({"_index": raw, **d} for d in built), thread_count=threads, chunk_size=chunk_size) if good)
            out["raw_bulk_s"] = time.perf_counter() - t
            assert ok == docs, (ok, docs)
            es.indices.delete(index=raw)
        print(f"raw bulk {out['raw_bulk_s']:.1f}s", flush=True)
        sample = [d["_id"] for d in random.Random(7).sample(built, 200)]
        del built

        first = search.publish(tenant, PROFILES, profile_documents(rows))
        print(f"publish 1: {first.docs:,} docs, bulk {first.bulk_s:.1f}s, total {first.total_s:.1f}s", flush=True)

        # The reader is another process, as an application would be (no GIL shared with the loader).
        ctx = multiprocessing.get_context("spawn")
        stop, results = ctx.Event(), ctx.Queue()
        reader = ctx.Process(target=_reader, args=(url, PROFILES.alias(tenant), sample, stop, results, pause_s,
                                                               count_every_s))
        reader.start()
        try:
            time.sleep(1.0)  # reading before the build starts
            second = search.publish(tenant, PROFILES, profile_documents(rows))
            time.sleep(1.0)  # and a moment after the swap
        finally:
            stop.set()
            reads = results.get(timeout=120)
            reader.join(timeout=30)
        if server:
            out["server_peak_mb"] = _peak_mb(server)
        print(f"publish 2 (with reader): bulk {second.bulk_s:.1f}s, total {second.total_s:.1f}s; "
              f"{len(reads)} reads", flush=True)
        bad = [r for r in reads if r[0] not in (None, docs) or r[1] != 1]
        out["counts"] = sum(1 for r in reads if r[0] == docs)
        out.update(
            publish1_bulk_s=first.bulk_s, publish1_total_s=first.total_s, publish2_bulk_s=second.bulk_s,
            publish2_total_s=second.total_s, reads=len(reads), bad_reads=len(bad), bad_examples=bad[:3],
            indices_seen=sorted({r[2] for r in reads if r[2]}), swap=(first.index, second.index),
            load=(load_start, os.getloadavg()[0]))
    finally:
        if server:
            server.remove()
        shutil.rmtree(work, ignore_errors=True)
    table = _report(out)
    print(table)
    if report:
        _write(report, table)
    return out


def _report(r: dict) -> str:
    n = r["docs"]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    swap_seen = len(r["indices_seen"]) == 2
    rates = [_rate(n, r["publish1_bulk_s"]), _rate(n, r["publish2_bulk_s"])]
    rows = [
        ("serialise only (client JSON serializer, baseline)", r["serialize_s"]),
        ("raw `parallel_bulk` of pre-built docs (baseline)", r["raw_bulk_s"]),
        ("warehouse read (`profile_rows`, DuckDB)", r["read_s"]),
        ("document building (`profile_document`)", r["build_s"]),
        ("publish 1: bulk (build + serialise + index, streamed)", r["publish1_bulk_s"]),
        ("publish 1: total (template, create, bulk, refresh, count check, swap, cleanup)", r["publish1_total_s"]),
        ("publish 2 with the reader running: bulk", r["publish2_bulk_s"]),
        ("publish 2 with the reader running: total", r["publish2_total_s"]),
    ]
    lines = [f"Measured {when} on {platform.machine()}, {os.cpu_count()} cores (shared), Python "
             f"{sys.version.split()[0]}; server {r['server']} on 127.0.0.1; {n:,} profile documents; "
             f"`parallel_bulk` with {r['threads']} threads × {r['chunk_size']} docs. Command: "
             f"`fincdp bench search --docs {n}{' --client-docs ' + str(r['client']['docs']) if r.get('client') else ''} "
             f"--report docs/benchmarks.md`.", "",
             "| step | docs | seconds | docs/s |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {n:,} | {s:.1f} | {_rate(n, s):,} |" for name, s in rows]
    lines += ["", f"Reader during publish 2 (a separate process): {r['reads']:,} reads of the alias, each a get of a "
              f"random person by OneID, {r['pause_s'] * 1000:.0f} ms apart, and a count every "
              f"{r['count_every_s']:.0f} s "
              f"({r['counts']} counts); "
              f"{r['bad_reads']} saw a missing alias or person or a count other than {n:,}"
              f"{' (e.g. ' + repr(r['bad_examples']) + ')' if r['bad_reads'] else ''}; "
              f"it read from {' and then '.join(r['indices_seen'])}"
              f"{' (so it was reading across the swap)' if swap_seen else ''}.",
              f"Server peak memory (VmHWM): {r.get('server_peak_mb')} MB.",
              f"Target ≥ 10,000 docs/s: publish bulk {min(rates):,}–{max(rates):,} docs/s "
              f"({'met' if min(rates) >= 10_000 else 'not met'})."]
    if r.get("client"):
        c, m = r["client"], r["client"]["docs"]
        lines += ["", f"The platform's side alone at {m:,} people (no server; same run, before the above):", "",
                  "| step | docs | seconds | docs/s |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {m:,} | {c[key]:.1f} | {_rate(m, c[key]):,} |" for name, key in (
            ("warehouse read (`profile_rows`, DuckDB)", "read_s"),
            ("document building (`profile_document`)", "build_s"),
            ("document building + JSON serialising, streamed", "build_serialize_s"))]
    lines += ["", _notes(r)]
    return "\n".join(lines)


def _notes(r: dict) -> str:
    n = r["docs"]
    raw, ours = _rate(n, r["raw_bulk_s"]), _rate(n, r["publish1_bulk_s"])
    client = r.get("client")
    return (
        f"Reading the figures: the local server is the bound. The raw bulk of already-built documents (no "
        f"warehouse read, no document building, no swap) ran at {raw:,} docs/s against {ours:,} for our whole "
        f"publish, while the platform's own steps (read, build, serialise) each run far faster"
        + (f" — {_rate(client['docs'], client['build_serialize_s']):,} docs/s for building + serialising "
           f"{client['docs']:,} documents" if client else "") + ". "
        "noida-db keeps indexes in memory and saves them as they change: its CPU per bulk request grows with "
        "the size of the index (docs/search.md has the measurements), and it answers `count` by scanning, which "
        "is why the reader counts only every few seconds and why reads slow the loader. It held "
        f"about {(r.get('server_peak_mb') or 0) * 1024 // max(1, 2 * n)} KB of memory per document here (its peak "
        "with the old and the new build side by side), so loading 1,000,000 documents with the old and the new build side "
        "by side (what an alias swap needs) would take on the order of 20 GB on this machine shared by five "
        "engineers: that run was not made, and the ≥ 10,000 docs/s target is not met on this server. None of "
        "this says anything about a real Elasticsearch cluster, where the same code path (parallel_bulk, ~9 MB "
        "requests, refresh off while loading) is the standard fast path; that was not measured here. Load "
        f"average on the 2 cores at start and end of the run: {r['load'][0]:.1f} and {r['load'][1]:.1f} (other "
        "engineers' tests and benchmarks).")


def _write(report: Path, table: str) -> None:
    from fincdp.bench_report import replace_block

    replace_block(report, MARK_BEGIN, MARK_END, table)
