"""`fincdp bench oneid`: OneID quality against ground truth, and speed.

(a) Quality: person and enterprise records of the demo data (CRM contacts, WeCom external contacts,
    the files; CRM enterprises) and the generated person file (fincdp.oneid.synthetic) with and without
    identifiers, resolved by the same code as `fincdp oneid resolve`; pairwise and cluster-level
    precision, recall and F1 against the ground truth, reported separately (a wrong merge is worse than
    a missed one), and the number of identities holding two different valid credit codes / ID numbers.
(b) Speed: the deterministic stage on N records with 3 identifiers each (messy formats, normalised
    here, hubs included) and on a chained graph (records linked in paths of 64); the probabilistic stage
    on the generated person file against a plain Splink run on the same data (time and peak memory,
    each in its own process).
Figures go to docs/benchmarks.md between the bench:oneid markers.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MARK_BEGIN, MARK_END = "<!-- bench:oneid:begin -->", "<!-- bench:oneid:end -->"

PERSON_ATTRIBUTES = [{"column": "surname", "kind": "name"}, {"column": "given_name", "kind": "name"},
                     {"column": "dob", "kind": "date"}, {"column": "postcode", "kind": "code"},
                     {"column": "city", "kind": "category"}, {"column": "gender", "kind": "category"}]
# the generated person file without any identifier: ID numbers and mobiles are only compared as codes
ATTRIBUTES_ONLY = {"record_id": "rec_id",
                   "attributes": PERSON_ATTRIBUTES + [{"column": "idcard", "kind": "code"},
                                                      {"column": "mobile", "kind": "code"}]}
WITH_IDENTIFIERS = {"record_id": "rec_id",
                    "identifiers": [{"column": "mobile", "type": "phone"}, {"column": "idcard", "type": "id_number"}],
                    "attributes": PERSON_ATTRIBUTES}


# --- metrics --------------------------------------------------------------------------------------

def _pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def cluster_metrics(truth, predicted) -> dict:
    """Pairwise precision/recall/F1 (over record pairs put together) and cluster-level ones (an
    identity counts when its records are exactly one true entity's)."""
    truth = np.asarray(truth, dtype=object).astype(str)
    predicted = np.asarray(predicted, dtype=object).astype(str)
    _, t_inv, t_counts = np.unique(truth, return_inverse=True, return_counts=True)
    _, p_inv, p_counts = np.unique(predicted, return_inverse=True, return_counts=True)
    joint = t_inv.astype(np.int64) * (len(p_counts) + 1) + p_inv
    _, j_inv, j_counts = np.unique(joint, return_inverse=True, return_counts=True)
    tp, true_pairs, pred_pairs = _pairs(j_counts), _pairs(t_counts), _pairs(p_counts)
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    # exact clusters: a joint group as large as both its true and its predicted cluster
    first = np.unique(j_inv, return_index=True)[1]
    exact = int(np.sum((j_counts == t_counts[t_inv[first]]) & (j_counts == p_counts[p_inv[first]])))
    c_precision, c_recall = exact / len(p_counts), exact / len(t_counts)
    f1 = lambda p, r: 2 * p * r / (p + r) if p + r else 0.0  # noqa: E731
    return {"records": len(truth), "true_entities": len(t_counts), "identities": len(p_counts),
            "true_pairs": true_pairs, "predicted_pairs": pred_pairs, "correct_pairs": tp,
            "wrong_pairs": pred_pairs - tp, "missed_pairs": true_pairs - tp,
            "pair_precision": precision, "pair_recall": recall, "pair_f1": f1(precision, recall),
            "cluster_precision": c_precision, "cluster_recall": c_recall, "cluster_f1": f1(c_precision, c_recall)}


def exclusive_violations(one_ids, values, identifier_type: str) -> int:
    """Identities holding two or more different valid values of an exclusive identifier type."""
    from fincdp.oneid.identifiers import normalize_identifier

    seen: dict[str, set[str]] = {}
    for one_id, raw in zip(one_ids, values):
        norm = normalize_identifier(identifier_type, raw)
        if norm is not None and norm.key:
            seen.setdefault(one_id, set()).add(norm.value)
    return sum(len(v) > 1 for v in seen.values())


# --- demo data as OneID input ---------------------------------------------------------------------

def _jsonl(path: Path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def demo_person_records(tenant_dir: Path) -> tuple[pa.Table, dict, dict[str, str]]:
    """CRM contacts, then WeCom external contacts, then the contact files (oldest sources first), with
    the truth person per record."""
    from fincdp.oneid.resolve_file import read_table

    tenant_dir = Path(tenant_dir)
    truth = {}
    import csv

    with open(tenant_dir / "ground_truth.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["entity"] == "person":
                truth[f"{row['source']}:{row['source_id']}"] = row["person_id"]
    enterprises = {e["id"]: e["name"] for e in _jsonl(tenant_dir / "crm/enterprises.jsonl")}
    rows = []
    for c in sorted(_jsonl(tenant_dir / "crm/contacts.jsonl"), key=lambda c: (c["created_at"], c["id"])):
        rows.append({"rec_id": f"crm:{c['id']}", "name": c["name"], "mobile": c["mobile"], "email": c["email"],
                     "id_number": c["id_number"], "unionid": None, "company": enterprises.get(c["enterprise_id"]),
                     "title": c["title"]})
    for x in _jsonl(tenant_dir / "wecom/external_contacts.jsonl"):
        ec, follow = x["external_contact"], (x.get("follow_user") or [{}])[0]
        mobiles = follow.get("remark_mobiles") or [None]
        rows.append({"rec_id": f"wecom:{ec['external_userid']}", "name": ec.get("name"), "mobile": mobiles[0],
                     "email": None, "id_number": None, "unionid": ec.get("unionid"),
                     "company": ec.get("corp_full_name") or ec.get("corp_name"), "title": ec.get("position")})
    for path in sorted((tenant_dir / "files").glob("contacts_*")):
        table = read_table(path)
        seen = set()
        for r in table.to_pylist():
            rec = f"file:{path.name}:{r['record_id']}"
            if rec in seen:      # a duplicated row of the file: the same record again
                continue
            seen.add(rec)
            rows.append({"rec_id": rec, "name": r["name"], "mobile": r["mobile"], "email": r["email"],
                         "id_number": None, "unionid": None, "company": r["company"], "title": r["title"]})
    table = pa.Table.from_pylist(rows)
    mapping = {"record_id": "rec_id",
               "identifiers": [{"column": "mobile", "type": "phone"}, {"column": "email", "type": "email"},
                               {"column": "id_number", "type": "id_number"},
                               {"column": "unionid", "type": "wechat_unionid"}],
               "attributes": [{"column": "name", "kind": "name"}, {"column": "company", "kind": "text"},
                              {"column": "title", "kind": "text"}]}
    return table, mapping, truth


def demo_enterprise_records(tenant_dir: Path) -> tuple[pa.Table, dict, dict[str, str]]:
    import csv

    tenant_dir = Path(tenant_dir)
    truth = {}
    with open(tenant_dir / "ground_truth.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["entity"] == "enterprise":
                truth[f"crm:{row['source_id']}"] = row["enterprise_id"]
    rows = [{"rec_id": f"crm:{e['id']}", "credit_code": e["credit_code"], "name": e["name"], "city": e["city"],
             "address": e["address"], "legal_representative": e["legal_representative"]}
            for e in sorted(_jsonl(tenant_dir / "crm/enterprises.jsonl"), key=lambda e: (e["created_at"], e["id"]))]
    mapping = {"record_id": "rec_id", "identifiers": [{"column": "credit_code", "type": "credit_code"}],
               "attributes": [{"column": "name", "kind": "text"}, {"column": "address", "kind": "text"},
                              {"column": "city", "kind": "category"},
                              {"column": "legal_representative", "kind": "name"}]}
    return pa.Table.from_pylist(rows), mapping, truth


def _resolve(table: pa.Table, mapping: dict, truth_column=None, truth: dict | None = None):
    from fincdp.oneid.resolve_file import Mapping, resolve_table

    m = Mapping.model_validate(mapping)
    t = time.perf_counter()
    result = resolve_table(table, m)
    seconds = time.perf_counter() - t
    ids = result.table["record_id"].to_pylist()
    labels = truth_column if truth_column is not None else [truth[i] for i in ids]
    metrics = cluster_metrics(labels, result.table["one_id"].to_pylist())
    metrics["seconds"] = seconds
    return result, metrics


def quality(work: Path, demo_scale: int = 2000, say=print) -> dict[str, dict]:
    from fincdp.demo.generate import generate_tenant
    from fincdp.oneid.synthetic import person_file

    out: dict[str, dict] = {}
    demo_dir = Path(work) / f"demo-{demo_scale}"
    if not (demo_dir / "t001" / "manifest.json").exists():
        generate_tenant(demo_dir, "t001", org_ids=["hq"], corpid="wwbench", corpsecret="bench", scale=demo_scale,
                        events_per_contact=1.0, seed=7, business_date=date(2026, 11, 25), days=1)
    table, mapping, truth = demo_person_records(demo_dir / "t001")
    result, metrics = _resolve(table, mapping, truth=truth)
    metrics["id_number_conflicts"] = exclusive_violations(result.table["one_id"].to_pylist(),
                                                          table["id_number"].to_pylist(), "id_number")
    out[f"demo people (scale {demo_scale})"] = metrics
    say(f"demo people: {metrics}")
    table, mapping, truth = demo_enterprise_records(demo_dir / "t001")
    result, metrics = _resolve(table, mapping, truth=truth)
    metrics["credit_code_conflicts"] = exclusive_violations(result.table["one_id"].to_pylist(),
                                                            table["credit_code"].to_pylist(), "credit_code")
    out[f"demo enterprises (scale {demo_scale})"] = metrics
    say(f"demo enterprises: {metrics}")
    for n, name, mapping in ((3000, "generated people, identifiers + attributes", WITH_IDENTIFIERS),
                             (3000, "generated people, attributes only", ATTRIBUTES_ONLY)):
        table = person_file(n, seed=11)
        result, metrics = _resolve(table.drop_columns(["person_id"]), mapping, truth_column=table["person_id"].to_pylist())
        metrics["id_number_conflicts"] = exclusive_violations(result.table["one_id"].to_pylist(),
                                                              table["idcard"].to_pylist(), "id_number")
        out[f"{name} ({n})"] = metrics
        say(f"{name}: {metrics}")
    return out


# --- speed: deterministic ----------------------------------------------------------------------------

def _messy_phone(digits: np.ndarray, style: np.ndarray) -> list[str]:
    out = []
    for d, s in zip(digits.tolist(), style.tolist()):
        text = f"1{d:010d}"
        text = "13" + text[2:]
        out.append(text if s < 6 else ("+86 " + text if s == 6 else ("0086-" + text if s == 7 else
                   text[:3] + " " + text[3:7] + " " + text[7:])))
    return out


def deterministic_speed(n: int, seed: int = 5) -> dict:
    """n records, 3 identifiers each (phone in messy formats, email, CRM id), ~1.5 records per person,
    a few hub phones; end to end = normalisation (each distinct value once) + resolve_strong."""
    from fincdp.oneid.resolve_file import _normalized_columns
    from fincdp.oneid.deterministic import resolve_strong
    from fincdp.oneid.rules import MergeRules

    rng = np.random.default_rng(seed)
    people = int(n / 1.5)
    person = rng.integers(0, people, n)
    draws = rng.integers(0, 10**9, 2 * people + 16)
    _, keep = np.unique(draws, return_index=True)
    phone_of = draws[np.sort(keep)][:people]           # distinct phones, one per person
    phone_person = np.where(rng.random(n) < 0.85, person, rng.integers(0, people, n))  # some records: another phone
    hub = rng.random(n) < 0.001
    phone_digits = np.where(hub, rng.integers(0, 20, n), phone_of[phone_person])
    phones = pa.array(_messy_phone(phone_digits, rng.integers(0, 9, n)), pa.string())
    emails = pa.array([f"u{p}@Example.com" if r < 0.5 else f"u{p}@example.com" for p, r in
                       zip(person.tolist(), rng.random(n).tolist())], pa.string())
    crm = pa.array([f"C{p}" for p in np.where(rng.random(n) < 0.3, person, n + np.arange(n)).tolist()], pa.string())
    rules = MergeRules()
    t = time.perf_counter()
    recs, types, values = [], [], []
    for column, kind in ((phones, "phone"), (emails, "email"), (crm, "crm_id")):
        value, key = _normalized_columns(column, kind)
        idx = np.flatnonzero(pc.fill_null(key, False).to_numpy(zero_copy_only=False))
        recs.append(idx)
        types.append(pa.array(np.full(len(idx), kind, dtype=object), pa.string()))
        values.append(value.take(pa.array(idx)))
    t_norm = time.perf_counter() - t
    result = resolve_strong(n, np.concatenate(recs), pa.concat_arrays(types), pa.concat_arrays(values), rules)
    total = time.perf_counter() - t
    return {"records": n, "identifiers": sum(len(r) for r in recs), "normalise_s": t_norm,
            "resolve_s": total - t_norm, "total_s": total, "identities": int(len(np.unique(result.root))),
            "hubs": len(result.hubs)}


def chained_speed(n: int, chain: int = 64) -> dict:
    """Records linked in paths: record i and i+1 share a phone within each chain of `chain` records."""
    from fincdp.oneid.deterministic import resolve_strong
    from fincdp.oneid.rules import MergeRules

    i = np.arange(n)
    a = np.flatnonzero((i % chain) != chain - 1)   # link i -- i+1 through value v_i
    rec = np.concatenate([a, a + 1])
    vals = pa.array([f"+861{v:010d}" for v in np.concatenate([a, a]).tolist()], pa.string())
    types = pa.array(np.full(len(rec), "phone", dtype=object), pa.string())
    t = time.perf_counter()
    result = resolve_strong(n, rec, types, vals, MergeRules())
    seconds = time.perf_counter() - t
    return {"records": n, "links": len(a), "chain": chain, "seconds": seconds,
            "identities": int(len(np.unique(result.root))), "expected": -(-n // chain)}


# --- speed: probabilistic vs plain Splink (each in its own process) -------------------------------

def _child(kind: str, path: str) -> dict:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    t = time.perf_counter()
    if kind == "oneid":
        from fincdp.oneid.resolve_file import Mapping, resolve_table

        result = resolve_table(table.drop_columns(["person_id"]), Mapping.model_validate(ATTRIBUTES_ONLY),
                               progress=lambda m: print(f"  [{time.perf_counter() - t:6.1f} s] {m}", file=sys.stderr,
                                                        flush=True))
        labels = result.table["one_id"].to_pylist()
        extra = {"blocking": result.blocking_rules, "training": result.training_rules,
                 "timings": {k: round(v, 1) for k, v in result.timings.items()}}
    else:
        labels, extra = _plain_splink(table, t)
    seconds = time.perf_counter() - t
    metrics = cluster_metrics(table["person_id"].to_pylist(), labels)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb, **{k: metrics[k] for k in ("pair_precision", "pair_recall", "pair_f1")},
            **extra}


def _plain_splink(table: pa.Table, t0: float):
    """What a data engineer writes by hand with Splink: the library's comparisons on the columns as
    given, the blocking keys OneID chose for this file (same pair volume: a fair comparison), u by
    sampling, EM on dob and postcode with `max_pairs`, predict, cluster at 0.8."""
    import logging

    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from fincdp.oneid.probabilistic import u_max_pairs

    n = table.num_rows
    df = table.drop_columns(["person_id"]).append_column("record", pa.array(np.arange(n)))
    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type="dedupe_only", unique_id_column_name="record",
        comparisons=[cl.ExactMatch("surname").configure(term_frequency_adjustments=True),
                     cl.DamerauLevenshteinAtThresholds("given_name", [1]),
                     cl.DamerauLevenshteinAtThresholds("dob", [1]), cl.DamerauLevenshteinAtThresholds("postcode", [1]),
                     cl.ExactMatch("city"), cl.ExactMatch("gender"),
                     cl.DamerauLevenshteinAtThresholds("idcard", [1]), cl.DamerauLevenshteinAtThresholds("mobile", [1])],
        blocking_rules_to_generate_predictions=[block_on("idcard"), block_on("mobile"), block_on("given_name", "city"),
                                                block_on("surname", "dob"), block_on("dob", "city"),
                                                block_on("given_name", "postcode")],
    )
    linker = Linker(db.register(df), settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("surname", "given_name", "dob"), block_on("idcard")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs(n), seed=42)
    em_pairs = float(min(2e6, max(2e5, 2 * n)))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"), max_pairs=em_pairs)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"), max_pairs=em_pairs)
    print(f"  [{time.perf_counter() - t0:6.1f} s] plain splink trained", file=sys.stderr, flush=True)
    predictions = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.8)
    out = db.duckdb_con.sql(f"select record, cluster_id from {clusters.physical_name} order by record").to_arrow_table()
    return [str(x) for x in out["cluster_id"].to_pylist()], {}


def probabilistic_speed(work: Path, n: int, say=print) -> dict:
    import pyarrow.parquet as pq

    from fincdp.oneid.synthetic import person_file

    path = Path(work) / f"people-{n}.parquet"
    if not path.exists():
        say(f"generating {n} person records")
        pq.write_table(person_file(n, seed=21), path)
    out = {}
    for kind in ("oneid", "plain"):
        say(f"probabilistic {kind} on {n} records")
        proc = subprocess.run([sys.executable, "-m", "fincdp.bench_oneid", "child", kind, str(path)],
                              capture_output=False, stdout=subprocess.PIPE, text=True, check=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
        say(f"  {kind}: {out[kind]}")
    out["ratio"] = out["oneid"]["seconds"] / out["plain"]["seconds"]
    out["records"] = n
    return out


# --- report -----------------------------------------------------------------------------------------

def _report(quality_rows: dict | None, det: dict | None, chained: dict | None, prob: dict | None) -> str:
    lines = [MARK_BEGIN, "## OneID (`fincdp bench oneid`)", "",
             f"Measured {date.today().isoformat()} on this 2-core machine (shared; other work running).", ""]
    if quality_rows:
        lines += ["### Quality against ground truth (precision first: a wrong merge is worse than a missed one)", "",
                  "| data | records | entities | identities | pair precision | pair recall | pair F1 | wrong pairs | "
                  "missed pairs | cluster precision | cluster recall | cluster F1 | exclusive conflicts | s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, m in quality_rows.items():
            conflicts = m.get("credit_code_conflicts", m.get("id_number_conflicts", ""))
            lines.append(f"| {name} | {m['records']} | {m['true_entities']} | {m['identities']} | "
                         f"{m['pair_precision']:.4f} | {m['pair_recall']:.4f} | {m['pair_f1']:.4f} | {m['wrong_pairs']} | "
                         f"{m['missed_pairs']} | {m['cluster_precision']:.4f} | {m['cluster_recall']:.4f} | "
                         f"{m['cluster_f1']:.4f} | {conflicts} | {m['seconds']:.1f} |")
        lines += ["", "Exclusive conflicts: identities holding two different valid credit codes (enterprises) or "
                  "ID numbers (people); must be 0.", ""]
    if det or chained:
        lines += ["### Deterministic stage", ""]
        if det:
            lines.append(f"- {det['records']:,} records / {det['identifiers']:,} identifiers (phones in messy formats, "
                         f"emails, CRM ids, {det['hubs']} hub phones): normalisation {det['normalise_s']:.1f} s + "
                         f"resolution {det['resolve_s']:.1f} s = **{det['total_s']:.1f} s** end to end "
                         f"(target ≤ 30 s); {det['identities']:,} identities.")
        if chained:
            lines.append(f"- Chained graph: {chained['records']:,} records linked in paths of {chained['chain']} "
                         f"({chained['links']:,} links): **{chained['seconds']:.1f} s**; {chained['identities']:,} "
                         f"identities (expected {chained['expected']:,}).")
        lines.append("")
    if prob:
        o, p = prob["oneid"], prob["plain"]
        lines += ["### Probabilistic stage against a plain Splink run (same generated file, attributes only)", "",
                  "| run | records | seconds | peak memory (MB) | pair precision | pair recall | pair F1 |",
                  "|---|---|---|---|---|---|---|",
                  f"| OneID (`resolve_table`, blocking and training chosen from the mapping) | {prob['records']:,} | "
                  f"{o['seconds']:.1f} | {o['peak_mb']:.0f} | {o['pair_precision']:.4f} | {o['pair_recall']:.4f} | "
                  f"{o['pair_f1']:.4f} |",
                  f"| plain Splink (hand-written settings, predict + cluster) | {prob['records']:,} | {p['seconds']:.1f} | "
                  f"{p['peak_mb']:.0f} | {p['pair_precision']:.4f} | {p['pair_recall']:.4f} | {p['pair_f1']:.4f} |",
                  "", f"Ratio OneID / plain: **{prob['ratio']:.2f}×** (target ≤ 1.5×; memory target < 4 GB). "
                  f"OneID chose blocking {', '.join(o.get('blocking', []))}; EM on {', '.join(o.get('training', []))}; "
                  f"step times {o.get('timings')}.", ""]
    lines.append(MARK_END)
    return "\n".join(lines)


def write_report(report: Path, block: str) -> None:
    from fincdp.bench_report import replace_block

    replace_block(report, MARK_BEGIN, MARK_END, block.removeprefix(MARK_BEGIN).removesuffix(MARK_END))


def run(work: Path, *, records: int = 1_000_000, probabilistic_records: int = 1_000_000, demo_scale: int = 2000,
        report: Path | None = None, skip: tuple[str, ...] = ()) -> str:
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    say = lambda m: print(m, flush=True)  # noqa: E731
    q = quality(work, demo_scale, say) if "quality" not in skip else None
    det = chained = None
    if "deterministic" not in skip:
        det = deterministic_speed(records)
        say(f"deterministic: {det}")
        chained = chained_speed(records)
        say(f"chained: {chained}")
    prob = probabilistic_speed(work, probabilistic_records, say) if "probabilistic" not in skip else None
    block = _report(q, det, chained, prob)
    print(block)
    if report is not None:
        write_report(Path(report), block)
    return block


if __name__ == "__main__":  # python -m fincdp.bench_oneid child <oneid|plain> <parquet>
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3])))
