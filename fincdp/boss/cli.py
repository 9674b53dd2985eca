"""`fincdp boss titles` and `fincdp bench boss`, registered from fincdp/cli.py."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_titles(args: argparse.Namespace) -> int:
    from fincdp.boss.config import BossConfig
    from fincdp.boss.titles import TitleMapper

    mapper = TitleMapper(BossConfig.load(args.config))
    stream = sys.stdin if str(args.file) == "-" else Path(args.file).open(encoding="utf-8")
    with stream:
        for line in stream:
            title = line.strip()
            if title:
                t = mapper.level(title, public_sector=args.public_sector)
                print(f"{title}\t{t.level or '?'}\t{t.table}\t{t.keyword}\t{t.function or ''}")
    unknown = mapper.unknown_titles()
    if unknown:
        print(f"\n{len(unknown)} title(s) no table knows (add them to titles.overrides or a keyword list):",
              file=sys.stderr)
        for title, n in unknown:
            print(f"  {title}\t{n}", file=sys.stderr)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from fincdp.boss.bench import run

    print(run(args.work, scale=args.scale, seed=args.seed, report_path=args.report))
    return 0


def register(commands, bench) -> None:
    boss = commands.add_parser("boss", help="the boss model: seniority from titles (docs/boss.md)").add_subparsers(
        dest="boss_command", required=True)
    titles = boss.add_parser("titles", help="map titles (one a line) to levels; unknown ones are listed")
    titles.add_argument("file", help="a text file, or - for stdin")
    titles.add_argument("--config", type=Path, default=None, help="a tenant's boss YAML over the defaults")
    titles.add_argument("--public-sector", action="store_true", help="use the public-sector table first")
    titles.set_defaults(func=_cmd_titles)
    b = bench.add_parser("boss", help="boss model against planted buying committees, by org-data sparsity")
    b.add_argument("--work", type=Path, default=Path("/tmp/fincdp-bench-boss"))
    b.add_argument("--scale", type=int, default=2000, help="demo generator scale (CRM contacts)")
    b.add_argument("--seed", type=int, default=7)
    b.add_argument("--report", type=Path, default=None, help="e.g. docs/benchmarks.md")
    b.set_defaults(func=_cmd_bench)
