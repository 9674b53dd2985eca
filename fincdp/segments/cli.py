"""`fincdp segment validate|preview` and `fincdp bench segments`: try a definition before deploying it."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import unicodedata
from pathlib import Path

from sqlglot import exp


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _load(path: Path, tenant_id: str | None = None):
    from fincdp.segments.language import SegmentError, load_segment

    try:
        return load_segment(path, tenant_id=tenant_id)
    except SegmentError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return None


def _cmd_validate(args: argparse.Namespace) -> int:
    from fincdp.segments.compiler import compile_segment
    from fincdp.segments.language import segments_root
    from fincdp.tenants import current_tenants

    failed = 0
    root, tenant_ids = segments_root().resolve(), current_tenants().ids
    for path in args.files:
        segment = _load(path)
        if segment is None:
            failed += 1
            continue
        if path.resolve().parent.parent == root and path.resolve().parent.name not in tenant_ids:
            print(f"invalid: {path}: folder {path.parent.name!r} is not a tenant of tenants.yaml "
                  f"({', '.join(tenant_ids)}): the definition would never run", file=sys.stderr)
            failed += 1
            continue
        compiled = compile_segment(segment, dt.date.today())
        print(f"ok: {path}: {segment.id} v{segment.version} ({segment.kind}) reads {', '.join(compiled.tables)}")
    return 1 if failed else 0


def sample_query(compiled, limit: int) -> str:
    """Members with what a marketer recognises them by: the name only masked, never raw."""
    query = (exp.select("g.one_id", "g.person_name", "g.title", "g.company_name")
             .from_(exp.to_table("dwm.dwm_person_golden").as_("g"))
             .where(exp.In(this=exp.column("one_id", table="g"), query=compiled.query.subquery()))
             .order_by("g.one_id").limit(limit))
    return query.sql(dialect="duckdb")


def _cmd_preview(args: argparse.Namespace) -> int:
    from fincdp.masking import mask_name
    from fincdp.segments.compiler import compile_segment
    from fincdp.segments.membership import evaluate_members
    from fincdp.tenants import current_tenants
    from resources.warehouse import Warehouse

    tenants = current_tenants()
    if args.tenant not in tenants.ids:
        print(f"unknown tenant {args.tenant!r}: tenants.yaml has {', '.join(tenants.ids)}", file=sys.stderr)
        return 2
    tenant = tenants.get(args.tenant)
    segment = _load(args.file, tenant.id)
    if segment is None:
        return 1
    engine = args.warehouse or os.environ.get("FINCDP_WAREHOUSE", "duckdb")
    with Warehouse(engine=engine).query(tenant) as session:
        if not session.table_exists("dwm.dwm_person_golden"):
            print(f"tenant {tenant.id!r} has no dwm.dwm_person_golden on {engine} yet: run its daily job first",
                  file=sys.stderr)
            return 1
        day = args.date or session.scalar("select max(as_of_date) from dwm.dwm_person_golden")
        if isinstance(day, str):
            day = dt.date.fromisoformat(day)
        if day is None:
            print(f"tenant {tenant.id!r}: dwm.dwm_person_golden is empty; pass --date", file=sys.stderr)
            return 1
        compiled = compile_segment(segment, day)
        prefix = "" if engine == "duckdb" else f"{tenant.database_prefix}_"
        print(f"-- {segment.id} v{segment.version} ({segment.kind}) for tenant {tenant.id}, business date {day}, "
              f"on {engine}")
        print(compiled.sql_for(engine, prefix) + ";")
        members = evaluate_members(session, compiled)
        print(f"\nmembers: {len(members)}")
        rows = session.rows(sample_query(compiled, args.sample)) if len(members) else []
    if rows:
        print(f"sample (first {len(rows)} by one_id; names masked):")
        print(f"  {_pad('one_id', 24)} {_pad('name', 10)} {_pad('title', 16)} company")
        for one_id, name, title, company in rows:
            print(f"  {_pad(one_id, 24)} {_pad(mask_name(name) or '-', 10)} {_pad(title or '-', 16)} {company or '-'}")
    return 0


def _pad(text: str, width: int) -> str:
    """Left-justify counting CJK characters as two columns, as terminals show them."""
    shown = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - shown, 0)


def _cmd_bench(args: argparse.Namespace) -> int:
    from fincdp.bench_segments import run

    run(args.work, profiles=args.profiles, events=args.events, repeat=args.repeat, report=args.report)
    return 0


def register(commands, bench) -> None:
    """Add `segment` to the fincdp command and `segments` to `fincdp bench`."""
    segment = commands.add_parser("segment", help="segment definitions (segments/<tenant>/<id>.yaml)").add_subparsers(
        dest="segment_command", required=True)
    validate = segment.add_parser("validate", help="check definition files; errors name file, rule path and problem")
    validate.add_argument("files", type=Path, nargs="+", metavar="FILE")
    validate.set_defaults(func=_cmd_validate)
    preview = segment.add_parser("preview", help="compiled SQL, member count and a masked sample on a tenant's warehouse")
    preview.add_argument("file", type=Path, metavar="FILE")
    preview.add_argument("--tenant", required=True)
    preview.add_argument("--warehouse", choices=["duckdb", "mysql", "clickhouse"], default=None,
                         help="engine (default: FINCDP_WAREHOUSE, else duckdb)")
    preview.add_argument("--date", type=_date, default=None, help="business date (default: the newest profiles')")
    preview.add_argument("--sample", type=int, default=10)
    preview.set_defaults(func=_cmd_preview)

    seg_bench = bench.add_parser("segments", help="20 segments over generated profiles and events on DuckDB")
    seg_bench.add_argument("--work", type=Path, default=Path("/tmp/fincdp-bench-segments"))
    seg_bench.add_argument("--profiles", type=int, default=1_000_000)
    seg_bench.add_argument("--events", type=int, default=10_000_000)
    seg_bench.add_argument("--repeat", type=int, default=3, help="runs per segment; the median is reported")
    seg_bench.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    seg_bench.set_defaults(func=_cmd_bench)
