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


def _cmd_bench_callbacks(args: argparse.Namespace) -> int:
    from fincdp.boss.bench_callbacks import run

    print(run(args.events))
    return 0


def _callback_setup(tenant_id: str):
    from fincdp.tenants import current_tenants

    tenant = current_tenants().get(tenant_id)
    wecom = tenant.sources.wecom
    if wecom is None or wecom.callback is None:
        raise SystemExit(f"tenant {tenant.id}: no sources.wecom.callback in the tenants file (token_env, "
                         "encoding_aes_key_env)")
    return tenant, wecom


def _cmd_callbacks_serve(args: argparse.Namespace) -> int:
    import logging

    from fincdp.boss.callbacks import CallbackInbox
    from fincdp.boss.receiver import CallbackReceiver
    from fincdp.cli import serve_until_interrupted

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tenant, wecom = _callback_setup(args.tenant)
    receiver = CallbackReceiver(tenant.id, wecom.callback.crypto(wecom.corpid), CallbackInbox(tenant.id),
                                host=args.host, port=args.port).start()
    print(f"tenant {tenant.id}: WeCom callbacks at {receiver.callback_url} into {receiver.inbox.path}; "
          "Ctrl-C stops", flush=True)
    return serve_until_interrupted(receiver.stop)


def _cmd_callbacks_list(args: argparse.Namespace) -> int:
    from fincdp.boss.callbacks import CallbackInbox, read_events

    tenant, _ = _callback_setup(args.tenant)
    if args.dead_letters:
        with CallbackInbox(tenant.id) as inbox:
            for d in inbox.dead_letters():
                print(f"{d['received_at']}\t{d['reason']}\t{d['error']}\tsha256:{d['body_sha256']}\t{d['body_bytes']} B")
        return 0
    for seq, e in read_events(tenant.id):
        print(f"{seq}\t{e.create_time}\t{e.event}/{e.change_type}\t{e.event_id}")
    return 0


def register(commands, bench) -> None:
    wecom = commands.add_parser("wecom", help="WeCom change callbacks (docs/boss.md)").add_subparsers(
        dest="wecom_command", required=True)
    cb = wecom.add_parser("callbacks", help="the callback receiver and its inbox").add_subparsers(
        dest="callbacks_command", required=True)
    serve = cb.add_parser("serve", help="receive a tenant's change callbacks (verify, decrypt, store) until "
                                        "interrupted")
    serve.add_argument("--tenant", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=18090)
    serve.set_defaults(func=_cmd_callbacks_serve)
    ls = cb.add_parser("list", help="stored events (ids and kinds only), or --dead-letters: rejected callbacks")
    ls.add_argument("--tenant", required=True)
    ls.add_argument("--dead-letters", action="store_true")
    ls.set_defaults(func=_cmd_callbacks_list)

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
    cbb = bench.add_parser("callbacks", help="WeCom callback receiver: time to acknowledge a signed, encrypted event")
    cbb.add_argument("--events", type=int, default=300)
    cbb.set_defaults(func=_cmd_bench_callbacks)
