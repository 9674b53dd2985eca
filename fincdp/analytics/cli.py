"""`fincdp analytics check`: validate analytics.yaml (what each tenant runs with); `fincdp bench analytics`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_check(args: argparse.Namespace) -> int:
    from fincdp.analytics.config import AnalyticsConfigError, analytics_file, load_analytics
    from fincdp.tenants import current_tenants

    path = args.file or analytics_file()
    tenant_ids = current_tenants().ids
    try:
        config = load_analytics(path, tenant_ids=tenant_ids)
    except AnalyticsConfigError as exc:
        print(exc)
        return 1
    for tid in tenant_ids:
        settings = config.for_tenant(tid)
        if args.show:
            print(f"{tid}: {json.dumps(settings.model_dump(), ensure_ascii=False)}")
        else:
            print(f"{tid}: {len(settings.funnels)} funnels, {len(settings.paths.anchors)} path anchors, "
                  f"attribution window {settings.attribution.window_days:g} days, "
                  f"lifecycle {' > '.join(r.stage for r in settings.lifecycle.rules)}")
    print(f"{path}: ok")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from fincdp.analytics.bench import run

    run(events=args.events, actors=args.actors, conversions=args.conversions, touchpoints=args.touchpoints,
        customers=args.customers, report=args.report)
    return 0


def register(commands, benches) -> None:
    """Adds `analytics check` and `bench analytics` to the `fincdp` parser's subcommands."""
    analytics = commands.add_parser("analytics", help="analytics settings (analytics.yaml)").add_subparsers(
        dest="analytics_command", required=True)
    check = analytics.add_parser("check", help="validate analytics.yaml; errors name the tenant and the field")
    check.add_argument("file", nargs="?", type=Path, default=None, help="default: FINCDP_ANALYTICS or analytics.yaml")
    check.add_argument("--show", action="store_true", help="print each tenant's merged settings")
    check.set_defaults(func=_cmd_check)
    bench = benches.add_parser("analytics", help="speed of funnels, paths, attribution and the CLV fit on synthetic data")
    bench.add_argument("--events", type=int, default=1_000_000)
    bench.add_argument("--actors", type=int, default=100_000)
    bench.add_argument("--conversions", type=int, default=100_000)
    bench.add_argument("--touchpoints", type=int, default=1_000_000)
    bench.add_argument("--customers", type=int, default=100_000)
    bench.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    bench.set_defaults(func=_cmd_bench)
