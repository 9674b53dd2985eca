"""`fincdp bench search`: bulk-index N profile documents (default 1M) into the local
Elasticsearch-speaking server and publish them by alias swap, with a reader hitting the alias.

Same-run baselines over the same documents: JSON serialisation alone (stdlib and orjson), and raw
`parallel_bulk` runs of the already-built documents into a plain index (no warehouse read, no document
building, no swap) with the previous and the current client settings, repeated and interleaved, medians
reported. The local server's own CPU time is read from /proc for every step: on a 2-core machine
shared with other jobs it is the figure that says what the server costs per document. During the
second publish a reader process gets people by OneID and counts the alias; every answer must be the
full document count (never 404, 0 or partial).
"""
from __future__ import annotations

import itertools
import os
import platform
import random
import shutil
import statistics
import sys
import multiprocessing
import time
from datetime import date, datetime, timezone
from pathlib import Path

MARK_BEGIN, MARK_END = "<!-- bench:search -->", "<!-- /bench:search -->"
# A run at 1M documents (a load only, or a publish with the reader) has its own block after the main one.
AT_SCALE = 1_000_000
SERIALISE_SAMPLE = 100_000  # documents serialised for the JSON baselines when no raw bulk keeps them all
LOAD_BEGIN, LOAD_END = "<!-- bench:search-load -->", "<!-- /bench:search-load -->"
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


def _server_cpu_s(server) -> float | None:
    """CPU seconds (user + system) the local server has used so far: its work per document, which the
    wall clock on a machine shared with other engineers' jobs does not show."""
    if server is None:
        return None
    try:
        fields = open(f"/proc/{server._process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, IndexError, ValueError):
        return None


def _rate(n: int, seconds: float) -> int:
    return round(n / seconds) if seconds > 0 else 0


# Raw bulk variants, each over the same pre-built documents into a plain index (no warehouse, no swap):
# name -> (description, serializer, omit nulls, chunk size or None for --chunk-size).
RAW_VARIANTS = {
    "before": ("previous client settings: stdlib JSON, null fields sent, 20,000 docs/request", "json", False, 20_000),
    "now": ("current client settings: orjson, null fields omitted, --chunk-size docs/request", "orjson", True, None),
    "large": ("current settings with 100,000 docs/request (~48 MB; ES accepts up to 100 MB)", "orjson", True, 100_000),
}


def _raw_bulk(search, tenant, server, built: list[dict], variant: str, chunk_size: int) -> dict:
    from elasticsearch import Elasticsearch

    from assets.search import PROFILES
    from resources.search import SearchIndex

    _, serializer, omit_nulls, chunk = RAW_VARIANTS[variant]
    chunk = chunk or chunk_size
    one = SearchIndex(url=search.url, thread_count=search.thread_count, chunk_size=chunk, omit_nulls=omit_nulls,
                      request_timeout_s=search.request_timeout_s)
    es = one.client(tenant) if serializer == "orjson" else Elasticsearch(search.url, request_timeout=600)
    raw = f"{tenant.es_index_prefix}benchraw"
    try:
        es.options(ignore_status=404).indices.delete(index=raw)
        es.indices.create(index=raw, mappings=PROFILES.mappings,
                          settings={**PROFILES.settings, "refresh_interval": "-1"})
        cpu0, t = _server_cpu_s(server), time.perf_counter()
        sent = one._bulk(es, tenant, raw, iter(built))
        wall = time.perf_counter() - t
        cpu1 = _server_cpu_s(server)
        assert sent == len(built), (sent, len(built))
        es.indices.delete(index=raw)
    finally:
        es.close()
    return {"s": wall, "server_cpu_s": None if cpu0 is None else cpu1 - cpu0, "chunk": chunk,
            "requests": -(-len(built) // chunk)}


def run(work: Path, *, docs: int = 1_000_000, url: str | None = None, threads: int = 2, chunk_size: int = 20_000,
        pause_s: float = 0.05, count_every_s: float = 5.0, client_docs: int = 0, repeats: int = 3,
        raw_variants: tuple[str, ...] = ("before", "now", "large"), publish: bool = True,
        report: Path | None = None) -> dict:
    work = work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["FINCDP_HOME"] = str(work / "home")  # a throwaway warehouse for the bench tenant
    from elastic_transport import JsonSerializer
    from elasticsearch.serializer import OrjsonSerializer

    from assets.search import PROFILES, profile_documents, profile_rows
    from fincdp.search_server import LocalSearchServer
    from fincdp.tenants import current_tenants
    from resources.search import SearchIndex
    from resources.warehouse import Warehouse

    unknown = set(raw_variants) - set(RAW_VARIANTS)
    if unknown:
        raise ValueError(f"unknown raw bulk variant(s) {sorted(unknown)}; known: {sorted(RAW_VARIANTS)}")
    tenant = current_tenants().get(TENANT)
    server = None
    if not url:
        server = LocalSearchServer(work / "es").start()
        url = server.url
    search = SearchIndex(url=url, thread_count=threads, chunk_size=chunk_size, keep_previous=1,
                         request_timeout_s=600)
    out: dict = {"docs": docs, "threads": threads, "chunk_size": chunk_size, "pause_s": pause_s,
                 "count_every_s": count_every_s, "repeats": repeats, "publish": publish,
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
        # The raw baselines send pre-built documents; without them nothing keeps the whole build in memory
        # (1M documents are ~12 GB of dicts here, which a 1M publish with the reader cannot afford).
        t = time.perf_counter()
        if raw_variants:
            built = list(profile_documents(rows))
            assert len(built) == docs, (len(built), docs)
        else:
            assert sum(1 for _ in profile_documents(rows)) == docs
        out["build_s"] = time.perf_counter() - t
        print(f"read {out['read_s']:.1f}s, documents built {out['build_s']:.1f}s", flush=True)

        serialised = built if raw_variants else list(itertools.islice(profile_documents(rows), SERIALISE_SAMPLE))
        out["serialize_docs"] = len(serialised)
        for name, serializer, omit in (("json", JsonSerializer(), False), ("orjson", OrjsonSerializer(), True)):
            t = time.perf_counter()
            size = 0
            for doc in serialised:
                body = {k: v for k, v in doc.items() if k != "_id" and not (omit and v is None)}
                size += len(serializer.dumps(body))
            out[f"serialize_{name}_s"], out[f"bytes_per_doc_{name}"] = time.perf_counter() - t, size / len(serialised)
        del serialised

        # Same-run baselines, interleaved so that a change in the machine's load hits every variant alike.
        out["raw"] = {v: [] for v in raw_variants}
        for i in range(repeats):
            for variant in raw_variants:
                m = _raw_bulk(search, tenant, server, built, variant, chunk_size)
                out["raw"][variant].append(m)
                print(f"raw bulk {variant} #{i + 1}: {m['s']:.1f}s, server CPU {_cpu(m['server_cpu_s'])}s "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
        sample = random.Random(7).sample(rows.column("one_id").to_pylist(), 200)  # a document's _id is its one_id
        built = None
        out["load"] = (load_start, os.getloadavg()[0])
        if server:
            out["server_peak_mb"] = _peak_mb(server)
        if not publish:
            return _finish(out, report)

        cpu0 = _server_cpu_s(server)
        first = search.publish(tenant, PROFILES, profile_documents(rows))
        out["publish1_server_cpu_s"] = None if cpu0 is None else _server_cpu_s(server) - cpu0
        print(f"publish 1: {first.docs:,} docs, bulk {first.bulk_s:.1f}s, total {first.total_s:.1f}s", flush=True)

        # The reader is another process, as an application would be (no GIL shared with the loader).
        ctx = multiprocessing.get_context("spawn")
        stop, results = ctx.Event(), ctx.Queue()
        reader = ctx.Process(target=_reader, args=(url, PROFILES.alias(tenant), sample, stop, results, pause_s,
                                                               count_every_s))
        reader.start()
        try:
            time.sleep(1.0)  # reading before the build starts
            cpu0 = _server_cpu_s(server)
            second = search.publish(tenant, PROFILES, profile_documents(rows))
            out["publish2_server_cpu_s"] = None if cpu0 is None else _server_cpu_s(server) - cpu0
            time.sleep(1.0)  # and a moment after the swap
        finally:
            stop.set()
            reads = results.get(timeout=600)
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
    return _finish(out, report)


def _finish(out: dict, report: Path | None) -> dict:
    table = _report(out)
    print(table)
    if report:
        from fincdp.bench_report import replace_block

        if out["docs"] < AT_SCALE:
            replace_block(report, MARK_BEGIN, MARK_END, table)
        else:
            replace_block(report, LOAD_BEGIN, LOAD_END, table, after=MARK_END)
    return out


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _us(cpu_s, n: int) -> str:
    return "–" if cpu_s is None else f"{cpu_s / n * 1e6:,.0f}"


def _cpu(cpu_s) -> str:
    return "–" if cpu_s is None else f"{cpu_s:.1f}"


def _report(r: dict) -> str:
    n = r["docs"]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    reps = r["repeats"]
    raw_names = list(r["raw"])
    raw_arg = ",".join(raw_names) or "''"
    command = (f"`fincdp bench search --docs {n} --chunk-size {r['chunk_size']} --repeats {reps}"
               f"{' --raw ' + raw_arg if raw_names != ['before', 'now', 'large'] else ''}"
               f"{' --count-every ' + format(r['count_every_s'], 'g') if r['count_every_s'] != 5 else ''}"
               f"{'' if r['publish'] else ' --no-publish'}"
               f"{' --client-docs ' + str(r['client']['docs']) if r.get('client') else ' --client-docs 0'}"
               " --report docs/benchmarks.md`")
    lines = [f"Measured {when} on {platform.machine()}, {os.cpu_count()} cores (shared with four other engineers' "
             f"jobs), Python {sys.version.split()[0]}; server {r['server']} on 127.0.0.1; {n:,} profile documents; "
             f"`parallel_bulk` with {r['threads']} threads. Command: {command}.", "",
             "| step | docs | seconds | docs/s | server CPU s | server CPU µs/doc |", "|---|---:|---:|---:|---:|---:|"]
    k = r.get("serialize_docs", n)
    lines.append(f"| serialise only, stdlib JSON, nulls kept ({r['bytes_per_doc_json']:.0f} B/doc) | {k:,} | "
                 f"{r['serialize_json_s']:.1f} | {_rate(k, r['serialize_json_s']):,} | | |")
    lines.append(f"| serialise only, orjson, nulls omitted ({r['bytes_per_doc_orjson']:.0f} B/doc) | {k:,} | "
                 f"{r['serialize_orjson_s']:.1f} | {_rate(k, r['serialize_orjson_s']):,} | | |")
    for name in raw_names:
        runs = r["raw"][name]
        wall = _median([m["s"] for m in runs])
        cpus = [m["server_cpu_s"] for m in runs if m["server_cpu_s"] is not None]
        cpu = _median(cpus) if cpus else None
        label = RAW_VARIANTS[name][0].replace("--chunk-size", f"{r['chunk_size']:,}")
        each = ", ".join(f"{m['s']:.1f}" for m in runs)
        requests = f"{runs[0]['requests']} request{'s' if runs[0]['requests'] != 1 else ''}"
        lines.append(f"| raw `parallel_bulk` of pre-built docs, {label} ({requests}; median of "
                     f"{len(runs)}: {each} s) | {n:,} | {wall:.1f} | "
                     f"{_rate(n, wall):,} | {_cpu(cpu)} | {_us(cpu, n)} |")
    lines += [
        f"| warehouse read (`profile_rows`, DuckDB) | {n:,} | {r['read_s']:.1f} | {_rate(n, r['read_s']):,} | | |",
        f"| document building (`profile_document`) | {n:,} | {r['build_s']:.1f} | {_rate(n, r['build_s']):,} | | |"]
    if not r["publish"]:
        raw_rates = [_rate(n, _median([m["s"] for m in runs])) for runs in r["raw"].values()]
        lines += ["", f"Load only (`--no-publish`: no alias swap, no reader; the swap is measured in the block "
                  f"above). Server peak memory (VmHWM): {r.get('server_peak_mb')} MB. Load average on the 2 cores "
                  f"at the start and end of the run: {r['load'][0]:.1f} and {r['load'][1]:.1f}.",
                  f"Target ≥ 10,000 docs/s: raw bulk {min(raw_rates, default=0):,}–{max(raw_rates, default=0):,} "
                  f"docs/s ({'met' if raw_rates and min(raw_rates) >= 10_000 else 'not met'}).", "", _notes(r)]
        return "\n".join(lines)
    swap_seen = len(r["indices_seen"]) == 2
    rates = [_rate(n, r["publish1_bulk_s"]), _rate(n, r["publish2_bulk_s"])]
    lines += [
        f"| publish 1: bulk (build + serialise + index, streamed; {r['chunk_size']:,} docs/request) | {n:,} | "
        f"{r['publish1_bulk_s']:.1f} | {rates[0]:,} | {_cpu(r.get('publish1_server_cpu_s'))} | "
        f"{_us(r.get('publish1_server_cpu_s'), n)} |",
        f"| publish 1: total (template, create, bulk, refresh, count check, swap, cleanup) | {n:,} | "
        f"{r['publish1_total_s']:.1f} | {_rate(n, r['publish1_total_s']):,} | | |",
        f"| publish 2 with the reader running: bulk (the old build, {n:,} docs, still on the server; server CPU "
        f"includes the reader's requests) | {n:,} | "
        f"{r['publish2_bulk_s']:.1f} | {rates[1]:,} | {_cpu(r.get('publish2_server_cpu_s'))} | "
        f"{_us(r.get('publish2_server_cpu_s'), n)} |",
        f"| publish 2 with the reader running: total | {n:,} | {r['publish2_total_s']:.1f} | "
        f"{_rate(n, r['publish2_total_s']):,} | | |",
    ]
    lines += ["", f"Reader during publish 2 (a separate process): {r['reads']:,} reads of the alias, each a get of a "
              f"random person by OneID, {r['pause_s'] * 1000:.0f} ms apart, and a count every "
              f"{r['count_every_s']:.0f} s "
              f"({r['counts']} counts); "
              f"{r['bad_reads']} saw a missing alias or person or a count other than {n:,}"
              f"{' (e.g. ' + repr(r['bad_examples']) + ')' if r['bad_reads'] else ''}; "
              f"it read from {' and then '.join(r['indices_seen'])}"
              f"{' (so it was reading across the swap)' if swap_seen else ''}.",
              f"Server peak memory (VmHWM): {r.get('server_peak_mb')} MB. Load average on the 2 cores at the start "
              f"and end of the run: {r['load'][0]:.1f} and {r['load'][1]:.1f}.",
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
    """What bounds the figures, computed from this run's own measurements."""
    n = r["docs"]
    runs = r["raw"].get("now") or r["raw"].get("large") or []
    cpus = [m["server_cpu_s"] for m in runs if m["server_cpu_s"] is not None]
    walls = [m["s"] for m in runs if m["server_cpu_s"] is not None]
    cpu, wall, what = (_median(cpus), _median(walls), "the raw bulk with the current settings") if cpus else \
        (r.get("publish1_server_cpu_s"), r.get("publish1_total_s"), "publish 1")
    if cpu is None:
        return ("No server CPU figures (an external `--url` cluster): the table shows wall time only, which on this "
                "shared machine mixes in other jobs' load.")
    us = cpu / n * 1e6
    p2 = r.get("publish2_server_cpu_s")
    return (
        f"Reading the figures: the local server is the bound, and it is CPU-bound. Its own CPU per document in "
        f"{what} was {us:,.0f} µs, so with a whole core to itself it would index about {1e6 / us:,.0f} docs/s at "
        f"this size; with {r['threads']} requests in flight it used {cpu / wall:.2f} cores on average over {what} "
        f"(server CPU / wall), and the platform's client needs CPU on the same two cores. Its cost also grows with what it "
        f"holds: it saves its whole state (every index on the server, one JSON file) after each bulk request and "
        f"holds writers back while it does, about 9–15 µs of CPU per document held, per request (docs/search.md, "
        f"\"Bulk throughput\")"
        + (f"; publish 2, with the old build of {n:,} documents still serving the alias and the reader's "
           f"requests on top (each count is a scan of the index), cost {p2 / n * 1e6:,.0f} µs of server CPU per "
           f"document" if p2 else "")
        + ". Hence fewer, larger requests help, more so the larger the index. Wall-clock rates here also carry "
        "the other engineers' jobs on the same two cores (see the load average). None of this says anything "
        "about a real Elasticsearch cluster, which was not measured here.")


