"""`fincdp search ...` and `fincdp bench search`, registered from fincdp/cli.py."""
from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_search_serve(args: argparse.Namespace) -> int:
    import time

    from fincdp import settings
    from fincdp.search_server import LocalSearchServer

    server = LocalSearchServer(args.data or settings.home() / "search", port=args.port).start()
    print(f"Local Elasticsearch API (noida-db, ES {server.version}) at {server.url}; data in {server.data_dir}. "
          f"Point the platform at it with FINCDP_ES_URL={server.url}; Ctrl-C stops it", flush=True)
    try:
        while server.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _cmd_bench_search(args: argparse.Namespace) -> int:
    from fincdp.bench_search import run

    raw = tuple(v for v in args.raw.split(",") if v) if args.raw else ()
    result = run(args.work, docs=args.docs, url=args.url, threads=args.threads, chunk_size=args.chunk_size,
                 pause_s=args.reader_pause, client_docs=args.client_docs, repeats=args.repeats,
                 raw_variants=raw, publish=not args.no_publish, count_every_s=args.count_every,
                 report=args.report)
    return 1 if result.get("bad_reads") else 0


def register(commands, bench) -> None:
    search = commands.add_parser("search", help="the search (Elasticsearch) indexes").add_subparsers(
        dest="search_command", required=True)
    serve = search.add_parser("serve", help="run the local Elasticsearch-speaking server (noida-db) until interrupted")
    serve.add_argument("--port", type=int, default=19200)
    serve.add_argument("--data", type=Path, default=None, help="data directory (default FINCDP_HOME/search)")
    serve.set_defaults(func=_cmd_search_serve)

    b = bench.add_parser("search", help="bulk-index profile documents and swap the alias under a reader")
    b.add_argument("--work", type=Path, default=Path("/tmp/fincdp-bench-search"))
    b.add_argument("--docs", type=int, default=100_000,
                   help="documents loaded into the server (noida-db holds ~10 KB each in memory: see docs/search.md)")
    b.add_argument("--url", default=None, help="an existing cluster instead of a local noida-db server")
    b.add_argument("--threads", type=int, default=2, help="parallel_bulk threads")
    b.add_argument("--chunk-size", type=int, default=20_000, help="documents per bulk request")
    b.add_argument("--client-docs", type=int, default=1_000_000,
                   help="also measure the platform's side alone (read, build, serialise) at this size; 0: skip")
    b.add_argument("--repeats", type=int, default=3, help="runs of each raw bulk baseline (medians reported)")
    b.add_argument("--raw", default="before,now,large",
                   help="raw bulk baselines to run, comma-separated: before (previous client settings), now "
                        "(current), large (100,000 docs per request); empty: none")
    b.add_argument("--no-publish", action="store_true",
                   help="only the raw bulk baselines (a load-only run, e.g. at 1M documents; its own report block)")
    b.add_argument("--count-every", type=float, default=5.0,
                   help="seconds between the reader's counts of the alias (a count is a scan on noida-db)")
    b.add_argument("--reader-pause", type=float, default=0.05, help="seconds the reader waits between reads")
    b.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    b.set_defaults(func=_cmd_bench_search)
