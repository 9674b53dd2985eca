"""The `fincdp` command: what a data engineer does outside the Dagster UI."""
from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timezone
from pathlib import Path


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _cmd_demo_run(args: argparse.Namespace) -> int:
    from fincdp.demo.run import run_demo

    run_demo(scale=args.scale, business_date=args.business_date, seed=args.seed)
    return 0


def _cmd_demo_generate(args: argparse.Namespace) -> int:
    from fincdp.demo.run import default_business_date, demo_secrets
    from fincdp.demo.generate import generate_tenant
    from fincdp import settings
    from fincdp.tenants import current_tenants

    tenants = current_tenants()
    demo_secrets(tenants, settings.home())
    chosen = args.tenant or tenants.ids
    for tenant_id in chosen:
        tenant = tenants.get(tenant_id)
        wecom = tenant.sources.wecom
        manifest = generate_tenant(
            args.out, tenant.id, org_ids=[o.id for o in tenant.orgs],
            corpid=wecom.corpid if wecom else f"ww{tenant.id}", corpsecret=wecom.corpsecret() if wecom else "",
            scale=args.scale, events_per_contact=args.events_per_contact, seed=args.seed,
            business_date=args.business_date or default_business_date(), days=args.days, progress=True)
        print(f"{tenant.id}: wrote {args.out / tenant.id} ({sum(manifest.get('counts', {}).values())} records)")
    return 0


def _cmd_sources_serve(args: argparse.Namespace) -> int:
    from fincdp import settings
    from fincdp.demo.run import demo_secrets, start_local_sources
    from fincdp.tenants import current_tenants

    tenants = current_tenants()
    demo_secrets(tenants, settings.home())
    sources = start_local_sources(tenants, args.data or settings.home() / "demo-data")
    print(f"Local CRM at {sources.crm.url}, local WeCom at {sources.wecom.url}; Ctrl-C stops them", flush=True)
    return serve_until_interrupted(sources.stop)


def serve_until_interrupted(stop) -> int:
    """Keep a command's servers (threads) up until Ctrl-C, then stop them."""
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stop()
    return 0


def _cmd_tenants_check(args: argparse.Namespace) -> int:
    from fincdp.tenants import TenantConfigError, load_tenants

    try:
        config = load_tenants(args.file)
    except TenantConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    for tenant in config.tenants:
        sources = [name for name in ("crm", "wecom", "files") if getattr(tenant.sources, name)]
        print(f"{tenant.id}: {tenant.name}; orgs {', '.join(tenant.org_ids)}; sources {', '.join(sources) or 'none'}; "
              f"{tenant.quota.concurrent_runs} concurrent run(s); retention {tenant.retention_days} days")
    return 0


def _cmd_instance_init(args: argparse.Namespace) -> int:
    from fincdp.instance import write_instance_config
    from fincdp.tenants import current_tenants

    print(f"wrote {write_instance_config(current_tenants())}")
    return 0


def _warehouse():
    from resources.dbt import warehouse_engine
    from resources.warehouse import Warehouse

    return Warehouse(engine=warehouse_engine())


def _tenant_session(tenant_id: str, *, read_only: bool = False):
    from fincdp.tenants import current_tenants

    return _warehouse().session(current_tenants().get(tenant_id), read_only=read_only)


def _cmd_dead_letters_list(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from assets.ingestion import store

    with _tenant_session(args.tenant, read_only=True) as session:
        if not session.table_exists(store.DEAD_LETTERS):
            print(f"tenant {args.tenant} has no dead letters")
            return 0
        rows = session.rows(
            f"select source || '.' || entity, record_ref, field, error_type, reason, status, attempts "
            f"from {store.DEAD_LETTERS} where business_date = ? and (? or status = 'open') "
            "order by source, entity, received_at limit ?", [args.date, args.all, args.limit])
    print(tabulate(rows, headers=["table", "record", "field", "error", "reason", "status", "attempts"],
                   tablefmt="github") if rows else f"no dead letters for {args.tenant} on {args.date}")
    return 0


def _cmd_dead_letters_replay(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from assets.ingestion.replay import replay_dead_letters
    from assets.ingestion.specs import spec_for
    from resources.pii import PiiVault

    with _tenant_session(args.tenant) as session:
        results = replay_dead_letters(session, PiiVault().cipher(args.tenant), args.date,
                                      source=args.source, entity=args.entity)
        for r in results:  # the warehouse engine gets the replayed partition too
            if r["landed"]:
                _warehouse().publish(session, spec_for(r["source"], r["entity"]).table, args.date)
    if not results:
        print(f"no open dead letters to replay for {args.tenant} on {args.date}")
    else:
        print(tabulate([[r["source"] + "." + r["entity"], r["replayed"], r["landed"], r["still_failing"],
                         r["batch_id"]] for r in results],
                       headers=["table", "replayed", "landed", "still failing", "batch"], tablefmt="github"))
    return 0


def _cmd_warehouse_publish(args: argparse.Namespace) -> int:
    from fincdp.tenants import current_tenants
    from resources.warehouse import publish_ods
    from resources.warehouse_engines import engine_session

    warehouse = _warehouse()
    if warehouse.engine == "duckdb":
        print("FINCDP_WAREHOUSE is duckdb: the landing store is the warehouse, nothing to publish")
        return 2
    tenant = current_tenants().get(args.tenant)
    with warehouse.session(tenant, read_only=True) as landing, engine_session(warehouse.engine, tenant) as target:
        published = publish_ods(landing, target, business_date=args.date)
    for table, rows in published.items():
        print(f"{warehouse.engine}:{target.prefix}{table}  {rows} rows")
    return 0


def _cmd_oneid_resolve(args: argparse.Namespace) -> int:
    from fincdp.oneid.resolve_file import MappingError, resolve_file

    try:
        resolve_file(args.input, args.config, args.out, threshold=args.threshold, pairs_path=args.pairs)
    except MappingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_oneid_review(args: argparse.Namespace) -> int:
    import pyarrow as pa
    from tabulate import tabulate

    from assets.oneid import REVIEW, REVIEW_SCHEMA, decide
    from fincdp.tenants import current_tenants

    with _warehouse().writer(current_tenants().get(args.tenant)) as session:
        queue = session.arrow(f"select * from {REVIEW}").to_pylist() if session.table_exists(REVIEW) else []
        if args.review_command == "list":
            rows = [[r["review_id"], r["entity_type"], r["record_a"], r["record_b"], r["identifier_type"], r["reason"],
                     r["status"], r["decided_by"] or ""] for r in queue if args.all or r["status"] == "open"]
            print(tabulate(rows, headers=["review", "entity", "record a", "record b", "link", "reason", "status", "by"],
                           tablefmt="github") if rows else f"no review items for {args.tenant}")
            return 0
        try:
            queue = decide(queue, args.review_ids, "approved" if args.review_command == "approve" else "rejected",
                           args.by, datetime.now(timezone.utc))
        except (KeyError, ValueError) as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
        session.replace_table(REVIEW, pa.Table.from_pylist(queue, schema=REVIEW_SCHEMA))
    print(f"{args.review_command}d {len(args.review_ids)} item(s) for {args.tenant} as {args.by}; "
          "the next run of oneid/identities applies it")
    return 0


def _cmd_bench_oneid(args: argparse.Namespace) -> int:
    from fincdp.bench_oneid import run

    run(args.work, records=args.records, probabilistic_records=args.probabilistic_records,
        demo_scale=args.demo_scale, report=args.report, skip=tuple(args.skip))
    return 0


def _cmd_bench_oneid_pipeline(args: argparse.Namespace) -> int:
    from fincdp.bench_oneid_pipeline import run

    run(args.work, scale=args.scale, report=args.report)
    return 0


def _cmd_bench_ingest(args: argparse.Namespace) -> int:
    from fincdp.bench import run

    run(args.work, contacts=args.contacts, events_per_contact=args.events_per_contact, repeat=args.repeat,
        workers=args.workers, report=args.report)
    return 0


def _cmd_bench_warehouse(args: argparse.Namespace) -> int:
    from fincdp.bench_warehouse import run

    run(args.work, contacts=args.contacts, engine=args.engine, workers=args.workers, report=args.report,
        mysql_options=tuple(args.mysql_option), revision=args.revision,
        stages=tuple(s for s in args.stages.split(",") if s))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fincdp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="demo data and the end-to-end demo").add_subparsers(
        dest="demo_command", required=True)
    run = demo.add_parser("run", help="generate data, start local sources and materialize everything")
    run.add_argument("--scale", type=int, default=1000, help="CRM contacts per tenant (default 1000)")
    run.add_argument("--business-date", type=_date, default=None, help="default: yesterday in Asia/Shanghai")
    run.add_argument("--seed", type=int, default=7)
    run.set_defaults(func=_cmd_demo_run)
    gen = demo.add_parser("generate", help="write a generated data set per tenant")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--tenant", action="append", help="tenant id (repeatable; default: all)")
    gen.add_argument("--scale", type=int, default=1000)
    gen.add_argument("--events-per-contact", type=float, default=10.0)
    gen.add_argument("--business-date", type=_date, default=None)
    gen.add_argument("--days", type=int, default=1)
    gen.add_argument("--seed", type=int, default=7)
    gen.set_defaults(func=_cmd_demo_generate)

    sources = commands.add_parser("sources", help="the local CRM and WeCom servers").add_subparsers(
        dest="sources_command", required=True)
    serve = sources.add_parser("serve", help="serve the demo data set until interrupted")
    serve.add_argument("--data", type=Path, default=None, help="default: FINCDP_HOME/demo-data")
    serve.set_defaults(func=_cmd_sources_serve)

    tenants = commands.add_parser("tenants", help="the tenants configuration").add_subparsers(
        dest="tenants_command", required=True)
    check = tenants.add_parser("check", help="validate tenants.yaml")
    check.add_argument("file", type=Path, nargs="?", default=None)
    check.set_defaults(func=_cmd_tenants_check)

    instance = commands.add_parser("instance", help="the local Dagster instance").add_subparsers(
        dest="instance_command", required=True)
    instance.add_parser("init", help="write dagster.yaml (run quotas per tenant)").set_defaults(
        func=_cmd_instance_init)

    dead = commands.add_parser("dead-letters", help="inspect and replay dead letters").add_subparsers(
        dest="dead_command", required=True)
    listing = dead.add_parser("list", help="dead letters of a tenant and date (reasons, never payloads)")
    replay = dead.add_parser("replay", help="land dead letters again after a fix (idempotent)")
    for sub in (listing, replay):
        sub.add_argument("--tenant", required=True)
        sub.add_argument("--date", type=_date, required=True)
    listing.add_argument("--all", action="store_true", help="include replayed and superseded ones")
    listing.add_argument("--limit", type=int, default=200)
    listing.set_defaults(func=_cmd_dead_letters_list)
    replay.add_argument("--source")
    replay.add_argument("--entity")
    replay.set_defaults(func=_cmd_dead_letters_replay)
    wh = commands.add_parser("warehouse", help="the warehouse engine (FINCDP_WAREHOUSE)").add_subparsers(
        dest="warehouse_command", required=True)
    publish = wh.add_parser("publish", help="publish a tenant's ODS from its landing store to the engine "
                                            "(every date, or one), e.g. after moving it to MySQL")
    publish.add_argument("--tenant", required=True)
    publish.add_argument("--date", type=_date, default=None, help="one business date (default: all)")
    publish.set_defaults(func=_cmd_warehouse_publish)

    # `fincdp oneid ...`: identity resolution outside the pipeline (more subcommands join this group)
    oneid = commands.add_parser("oneid", help="OneID identity resolution").add_subparsers(
        dest="oneid_command", required=True)
    resolve = oneid.add_parser("resolve", help="resolve the records of a CSV/Parquet file into identities, "
                                               "with the pipeline's rules")
    resolve.add_argument("input", type=Path, help="records (.csv or .parquet)")
    resolve.add_argument("--config", type=Path, required=True, help="MAPPING.yaml: record_id, identifiers, attributes")
    resolve.add_argument("--out", type=Path, required=True, help="output (.csv or .parquet): one row per record")
    resolve.add_argument("--threshold", type=float, default=None,
                         help="match probability at which a probabilistic pair merges (default 0.8)")
    resolve.add_argument("--pairs", type=Path, default=None,
                         help="also write the scored pairs (merged, review, candidate, cut) here")
    resolve.set_defaults(func=_cmd_oneid_resolve)
    review = oneid.add_parser("review", help="the human-review queue of a tenant's identities").add_subparsers(
        dest="review_command", required=True)
    review_list = review.add_parser("list", help="open review items (links cut by a conflict)")
    review_list.add_argument("--all", action="store_true", help="include decided items")
    for decision in ("approve", "reject"):
        sub = review.add_parser(decision, help=f"{decision} review items (recorded with who and when)")
        sub.add_argument("review_ids", nargs="+", metavar="REVIEW_ID")
        sub.add_argument("--by", required=True, help="the reviewer's name")
    for sub in (review_list, *[review.choices[d] for d in ("approve", "reject")]):
        sub.add_argument("--tenant", required=True)
        sub.set_defaults(func=_cmd_oneid_review)

    bench = commands.add_parser("bench", help="benchmarks (figures go to docs/benchmarks.md)").add_subparsers(
        dest="bench_command", required=True)
    ingest = bench.add_parser("ingest", help="ODS ingestion throughput against same-run baselines")
    ingest.add_argument("--work", type=Path, default=Path("/tmp/fincdp-bench"))
    ingest.add_argument("--contacts", type=int, default=100_000)
    ingest.add_argument("--events-per-contact", type=float, default=10.0)
    ingest.add_argument("--repeat", type=int, default=3)
    ingest.add_argument("--workers", type=int, default=2)
    ingest.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    ingest.set_defaults(func=_cmd_bench_ingest)
    warehouse = bench.add_parser("warehouse", help="full T+1 build and the next day, per layer (ODS, dbt layers)")
    warehouse.add_argument("--work", type=Path, default=Path("/tmp/fincdp-bench-warehouse"),
                           help="generated data is kept here and reused (one scale per folder)")
    warehouse.add_argument("--contacts", type=int, default=1_000_000, help="CRM contacts; events = 10 per contact")
    warehouse.add_argument("--engine", choices=["duckdb", "mysql", "clickhouse"], default="duckdb")
    warehouse.add_argument("--workers", type=int, default=2, help="worker processes of a file load")
    warehouse.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    warehouse.add_argument("--mysql-option", action="append", default=[], metavar="OPTION",
                           help="extra mariadbd option, repeatable; e.g. --mysql-option=--join-cache-level=4")
    warehouse.add_argument("--revision", default=None,
                           help="run the dbt project of this git commit (e.g. HEAD), exported into --work")
    warehouse.add_argument("--stages", default="segments,analytics,boss",
                           help="the daily job's stages after ADS to run after each day's build, comma-separated "
                                "(\"\" for none; search is never run: docs/benchmarks.md)")
    warehouse.set_defaults(func=_cmd_bench_warehouse)
    oneid_bench = bench.add_parser("oneid", help="OneID quality against ground truth, deterministic and "
                                                 "probabilistic speed against plain Splink")
    oneid_bench.add_argument("--work", type=Path, default=Path("/tmp/fincdp-bench-oneid"))
    oneid_bench.add_argument("--records", type=int, default=1_000_000,
                             help="records of the deterministic speed run (3 identifiers each)")
    oneid_bench.add_argument("--probabilistic-records", type=int, default=1_000_000,
                             help="records of the probabilistic run and of the plain Splink baseline")
    oneid_bench.add_argument("--demo-scale", type=int, default=2000, help="demo generator scale for quality")
    oneid_bench.add_argument("--skip", action="append", default=[], choices=["quality", "deterministic", "probabilistic"])
    oneid_bench.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    oneid_bench.set_defaults(func=_cmd_bench_oneid)
    oneid_pipeline = bench.add_parser("oneid-pipeline", help="the pipeline's OneID step on demo data against "
                                                             "ground truth, strong ids alone and with Splink")
    oneid_pipeline.add_argument("--work", type=Path, default=Path("/tmp/fincdp-bench-oneid-pipeline"))
    oneid_pipeline.add_argument("--scale", type=int, default=2000, help="demo generator scale")
    oneid_pipeline.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    oneid_pipeline.set_defaults(func=_cmd_bench_oneid_pipeline)
    from fincdp.analytics.cli import register as register_analytics
    register_analytics(commands, bench)
    from fincdp.segments.cli import register as register_segments
    register_segments(commands, bench)
    from fincdp.search_cli import register as register_search
    register_search(commands, bench)
    from fincdp.boss.cli import register as register_boss
    register_boss(commands, bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
