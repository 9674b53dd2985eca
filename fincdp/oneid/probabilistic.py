"""The probabilistic stage: weak identifiers and fuzzy attributes link deterministic clusters (Splink).

Input: one row per record — `record` (0..n-1, oldest first), `cluster` (the deterministic root from
`resolve_strong`), comparison attributes of a kind (name, text, date, code, category, number) and
evidence identifiers (weak types such as cookie/device_id, and strong values that failed their check,
such as an ID number with a wrong check character). Everything is learnt from the data itself:

- comparisons follow the kinds (name: exact / Jaro-Winkler, with term frequencies; date: exact /
  one or two edits (typos, day and month swapped); code: exact / one or two edits; text: exact /
  Jaro-Winkler / Jaccard; category: exact; number: exact / within 5 %; identifiers: exact, ID-like
  values also one or two edits);
- blocking rules are chosen by counting the pairs each candidate key would produce (single columns,
  then pairs of columns) and keeping the broadest ones under a budget, plus the deterministic cluster
  (pairs inside a deterministic cluster are scored too, so a doubtful deterministic link is visible);
- training is unsupervised: the prior from strict deterministic rules, u by random sampling, m by EM
  on two sampled blocking rules over different columns, date/code/identifier columns before names
  (EM blocked on names alone mis-learns: ../shared/libraries.md).

Merging: pairs at or above the threshold link their clusters unless that would put two different
values of an exclusive identifier type (credit code, ID number) or a pair a reviewer rejected into one
identity; such links are cut (strongest pairs first) and reported. Pairs in [review_floor, threshold)
are review candidates; the rest (down to `candidate_floor`) stay candidates with their probability.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components, minimum_spanning_tree

from fincdp.oneid.rules import MergeRules
from fincdp.pii import name_key

log = logging.getLogger(__name__)

ATTRIBUTE_KINDS = ("name", "text", "date", "code", "category", "number")
# Identifier types compared with edit distances (a typo in an ID-like value is still evidence).
EDIT_DISTANCE_TYPES = {"id_number", "credit_code", "phone"}
REJECTED = "review:rejected"


@dataclass(frozen=True)
class Attribute:
    column: str          # column of the records table
    kind: str            # one of ATTRIBUTE_KINDS
    label: str = ""      # shown in evidence (default: the column)


@dataclass(frozen=True)
class Evidence:
    column: str          # column of the records table: one normalised value per record, or null
    identifier_type: str
    label: str = ""
    tokens: bool = False  # values are keyed tokens (the pipeline's HMACs): only equality means anything


@dataclass(frozen=True)
class Cut:
    """A probabilistic link that was not made: it would have joined `record_a`'s and `record_b`'s
    identities, which differ on an exclusive identifier type (or a reviewer kept them apart)."""
    record_a: int
    record_b: int
    probability: float
    reason: str


@dataclass
class LinkResult:
    root: np.ndarray             # per record: the final identity's oldest record
    confidence: np.ndarray       # per record: 1.0, or the weakest probabilistic link holding it in
    evidence: np.ndarray         # per record: what joined it ("phone", "splink p=0.97 name,dob", "self")
    pairs: pa.Table              # record_l, record_r, probability, agreeing, same_cluster, decision
    cuts: list[Cut] = field(default_factory=list)
    hubs: list[tuple[str, int]] = field(default_factory=list)   # (evidence, records) values ignored as hubs
    blocking_rules: list[str] = field(default_factory=list)
    training_rules: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model: dict | None = None    # the trained Splink model (settings + m/u), to score later runs with
    scored: pa.Table | None = None  # record_l, record_r, match_probability, gamma_<col>: what was scored
    rescored: int = 0            # records whose pairs were scored by this run (all, or the dirty ones)

    def review(self) -> pa.Table:
        return self.pairs.filter(pc.equal(self.pairs["decision"], "review"))


# --- preparing the columns ----------------------------------------------------------------------

def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z.'\-]*")


def _clean_name(text: str) -> str | None:
    """name_key, and a Chinese name written with an English alias ('黄晋磊 Kevin') keeps the Chinese."""
    text = _nfkc(text)
    if _CJK.search(text) and _LATIN_WORD.search(text):
        text = _LATIN_WORD.sub("", text)
    key = name_key(text)
    return key or None


def _clean_text(text: str) -> str | None:
    key = re.sub(r"\s+", " ", _nfkc(text)).strip().lower()
    return key or None


def _clean_code(text: str) -> str | None:
    key = re.sub(r"[\s\-_./]", "", _nfkc(text)).upper()
    return key or None


_DATE = re.compile(r"(\d{4})\D?(\d{1,2})\D?(\d{1,2})")


def _clean_date(text: str) -> str | None:
    """YYYYMMDD from 2024-01-05, 2024/1/5, 20240105, 2024年1月5日 or an ISO timestamp; digits as
    written (an impossible date such as a swapped day and month is kept: it is still evidence)."""
    m = _DATE.match(_nfkc(text).strip())
    if not m:
        return None
    return f"{m.group(1)}{int(m.group(2)):02d}{int(m.group(3)):02d}"


_CLEANERS: dict[str, Callable[[str], str | None]] = {
    "name": _clean_name, "text": _clean_text, "code": _clean_code, "category": _clean_text, "date": _clean_date,
}


def clean_column(values: pa.Array | pa.ChunkedArray, kind: str) -> pa.Array:
    """The comparison form of an attribute column (each distinct value cleaned once)."""
    if kind == "number":
        return pc.cast(values, pa.float64(), safe=False) if pa.types.is_floating(values.type) or \
            pa.types.is_integer(values.type) else _to_number(values)
    if pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
        values = pc.strftime(values, "%Y%m%d") if kind == "date" else pc.cast(values, pa.string())
    elif not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    clean = _CLEANERS[kind]
    dictionary = pa.array([clean(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return dictionary.take(encoded.indices)


def _to_number(values) -> pa.Array:
    out = []
    for v in pc.cast(values, pa.string()).to_pylist():
        try:
            out.append(float(_nfkc(v).replace(",", "")) if v is not None else None)
        except ValueError:
            out.append(None)
    return pa.array(out, pa.float64())


# --- the Splink model ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Col:
    name: str        # column in the Splink input (c0, c1, ...)
    label: str       # shown in evidence
    kind: str        # attribute kind, or "id:<type>"


def _comparison(col: _Col, short: bool):
    """Levels by kind; `short`: the column's values are a few characters (Chinese names, initials),
    where Jaro-Winkler levels are never reached and one edit is the useful 'close' level."""
    import splink.comparison_level_library as cll
    from splink import comparison_library as cl

    c = col.name
    kind = col.kind.split(":", 1)[-1] if col.kind.startswith("id:") else col.kind
    if kind in ("name", "text"):
        close = [cll.DamerauLevenshteinLevel(c, 1)] if short else \
            [cll.JaroWinklerLevel(c, 0.92), cll.JaroWinklerLevel(c, 0.8)]
        if kind == "text" and not short:
            close.append(cll.JaccardLevel(c, 0.6))
        levels = [cll.NullLevel(c), cll.ExactMatchLevel(c, term_frequency_adjustments=kind == "name"), *close,
                  cll.ElseLevel()]
    elif kind == "date":
        swapped = (f"substr({c}_l, 1, 4) = substr({c}_r, 1, 4) and substr({c}_l, 5, 2) = substr({c}_r, 7, 2) "
                   f"and substr({c}_l, 7, 2) = substr({c}_r, 5, 2)")
        levels = [cll.NullLevel(c), cll.ExactMatchLevel(c), cll.DamerauLevenshteinLevel(c, 1),
                  cll.CustomLevel(swapped, label_for_charts="day and month swapped"), cll.ElseLevel()]
    elif kind == "code" or kind in EDIT_DISTANCE_TYPES:
        levels = [cll.NullLevel(c), cll.ExactMatchLevel(c), cll.DamerauLevenshteinLevel(c, 1), cll.ElseLevel()]
    elif kind == "number":
        levels = [cll.NullLevel(c), cll.ExactMatchLevel(c),
                  cll.CustomLevel(f"abs({c}_l - {c}_r) <= 0.05 * greatest(abs({c}_l), abs({c}_r))",
                                  label_for_charts="within 5%"),
                  cll.ElseLevel()]
    else:  # category, weak identifiers
        levels = [cll.NullLevel(c), cll.ExactMatchLevel(c), cll.ElseLevel()]
    return cl.CustomComparison(levels, output_column_name=c, comparison_description=col.label)


def _pairs_of_key(con: duckdb.DuckDBPyConnection, table: str, cols: Sequence[str]) -> int:
    where = " and ".join(f"{c} is not null" for c in cols)
    key = ", ".join(cols)
    row = con.execute(f"select coalesce(sum(n * (n - 1) / 2), 0) from "
                      f"(select count(*) n from {table} where {where} group by {key})").fetchall()[0]
    return int(row[0])


def _choose_blocking(con, table: str, cols: list[_Col], n: int, budget: int, max_rules: int
                     ) -> tuple[list[tuple[str, ...]], dict[tuple[str, ...], int]]:
    """The broadest keys (single columns, then pairs) that stay under `budget` pairs each."""
    blockable = [c for c in cols if c.kind != "number"]
    counts: dict[tuple[str, ...], int] = {}
    for c in blockable:
        counts[(c.name,)] = _pairs_of_key(con, table, [c.name])
    too_broad = [c.name for c in blockable if counts[(c.name,)] > budget]
    for a, b in combinations(too_broad, 2):
        counts[(a, b)] = _pairs_of_key(con, table, [a, b])
    usable = [k for k, v in counts.items() if 0 < v <= budget]
    # single columns first, then the broadest pairs; a pair whose column is already a rule adds nothing
    usable.sort(key=lambda k: (len(k), -counts[k], k))
    chosen: list[tuple[str, ...]] = []
    for key in usable:
        if any(set(c) <= set(key) for c in chosen):
            continue
        # spread the pairs over the columns: skip a pair whose both columns are already in two chosen pairs
        used = [col for c in chosen if len(c) > 1 for col in c]
        if len(key) > 1 and all(used.count(col) >= 2 for col in key):
            continue
        chosen.append(key)
        if len(chosen) >= max_rules:
            break
    return chosen, counts


def _rule_sql(key: Sequence[str]) -> str:
    return " and ".join(f"l.{c} = r.{c}" for c in key)


def _choose_training(chosen: list[tuple[str, ...]], counts: dict, cols: dict[str, _Col], n: int
                     ) -> list[tuple[str, ...]]:
    """One or two EM blocking rules over different columns; names last (EM blocked on names mis-learns)."""
    def order(key):
        names = sum(cols[c].kind in ("name", "text") for c in key)
        weak = sum(cols[c].kind == "category" for c in key)
        # the most selective key that still gives pairs to learn from (matches are then a good share
        # of its pairs); categories and names last
        return (names + weak, 0 if counts[key] >= 0.2 * n else 1, counts[key], key)

    keys = sorted(chosen, key=order)
    if not keys:
        return []
    first = keys[0]
    second = next((k for k in keys[1:] if not set(k) & set(first)), None)
    return [first] + ([second] if second else [])


def _fetch(con, sql: str) -> pa.Table:
    return con.sql(sql).to_arrow_table()


# --- the stage ----------------------------------------------------------------------------------

def link(records: pa.Table, attributes: Sequence[Attribute], evidence: Sequence[Evidence], rules: MergeRules, *,
         joined_by: np.ndarray | None = None, exclusive: dict[str, np.ndarray] | None = None,
         rejected: Sequence[tuple[int, int]] = (), candidate_floor: float = 0.2, seed: int = 42,
         budget_per_record: float = 8.0, max_rules: int = 6, em_max_pairs: float | None = None,
         progress: Callable[[str], None] | None = None, con: duckdb.DuckDBPyConnection | None = None,
         model: dict | None = None, dirty: np.ndarray | None = None, previous: pa.Table | None = None) -> LinkResult:
    """Link the deterministic clusters of `records` (columns `record`, `cluster` and the named ones).

    `joined_by`: the deterministic stage's joined_by per record (evidence text); `exclusive`: per
    exclusive identifier type, the record's valid key value (or None) — two identities holding
    different values are never linked; `rejected`: record pairs a reviewer kept apart.

    Incremental runs: `model` (a previous result's `model`) skips blocking choice and training;
    with `dirty` (per record: new or changed since `previous` was scored) only pairs touching a dirty
    record are scored, and `previous` (earlier `scored` rows among clean records, renumbered to these
    records) supplies the rest.
    """
    import time

    say = progress or (lambda message: None)
    n = records.num_rows
    record = records["record"].to_numpy().astype(np.int64)
    if not np.array_equal(record, np.arange(n)):
        raise ValueError("records must be numbered 0..n-1 in order (oldest first)")
    cluster = records["cluster"].to_numpy().astype(np.int64)
    joined_by = np.full(n, None, dtype=object) if joined_by is None else joined_by
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    # the Splink input: safe column names, cleaned values, hub values of weak identifiers removed
    cols: list[_Col] = []
    data = {"record": pa.array(record), "cluster": pa.array(cluster)}
    for i, a in enumerate(attributes):
        if a.kind not in ATTRIBUTE_KINDS:
            raise ValueError(f"attribute {a.column!r}: unknown kind {a.kind!r}; known: {', '.join(ATTRIBUTE_KINDS)}")
        name = f"a{i}"
        data[name] = clean_column(records[a.column], a.kind)
        cols.append(_Col(name, a.label or a.column, a.kind))
    hubs: list[tuple[str, int]] = []
    for i, e in enumerate(evidence):
        rule = rules.rule(e.identifier_type)
        if rule.weight == 0:
            continue
        values = records[e.column]
        values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        values = pc.cast(values, pa.string())
        limit = rule.max_records
        if limit:
            encoded = pc.dictionary_encode(values)
            idx = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
            per_value = np.bincount(idx[idx >= 0], minlength=len(encoded.dictionary))
            hub = per_value > limit
            if hub.any():
                hubs.extend((e.label or e.column, int(c)) for c in per_value[hub])
                mask = pa.array(hub).take(encoded.indices)
                values = pc.if_else(pc.fill_null(mask, False), pa.scalar(None, pa.string()), values)
        name = f"e{i}"
        data[name] = values
        cols.append(_Col(name, e.label or e.column, "id:token" if e.tokens else f"id:{e.identifier_type}"))
    if not cols:
        raise ValueError("the probabilistic stage needs at least one attribute or evidence identifier")
    if dirty is not None:
        data["dirty"] = pa.array(np.asarray(dirty, dtype=bool))
    table = pa.table(data)
    by_name = {c.name: c for c in cols}
    timings["prepare"] = time.perf_counter() - t0

    own = con is None
    con = con or duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.register("oneid_input_arrow", table)
    con.execute("create or replace table oneid_input as select * from oneid_input_arrow")
    con.unregister("oneid_input_arrow")
    del table, data

    from splink import DuckDBAPI, Linker, SettingsCreator

    db_api = DuckDBAPI(connection=con)
    describe = lambda key: "+".join(by_name[c].label for c in key)  # noqa: E731
    if model is None:
        budget = int(max(200_000, budget_per_record * n))
        chosen, counts = _choose_blocking(con, "oneid_input", cols, n, budget, max_rules)
        multi_clusters = int(con.execute("select count(*) from (select cluster from oneid_input group by cluster "
                                         "having count(*) > 1)").fetchall()[0][0])
        blocking = [_rule_sql(k) for k in chosen] + (["l.cluster = r.cluster"] if multi_clusters else [])
        training = _choose_training(chosen, counts, by_name, n)
        say(f"blocking on {', '.join(describe(k) for k in chosen) or 'nothing'}"
            + (" and the deterministic cluster" if multi_clusters else "")
            + f"; EM on {', '.join(describe(k) for k in training) or 'nothing'}")
        if not blocking:
            raise ValueError("no usable blocking key: every attribute is empty or too common to block on")
        timings["blocking"] = time.perf_counter() - t0 - timings["prepare"]

        text_cols = [c.name for c in cols if c.kind != "number"]
        lengths = con.execute("select " + ", ".join(f"avg(length({c}))" for c in text_cols) + " from oneid_input"
                              ).fetchall()[0] if text_cols else []
        short = {c: (v or 0) <= 4 for c, v in zip(text_cols, lengths)}

        settings = SettingsCreator(
            link_type="dedupe_only", unique_id_column_name="record",
            comparisons=[_comparison(c, short.get(c.name, False)) for c in cols],
            blocking_rules_to_generate_predictions=blocking,
            retain_matching_columns=True, retain_intermediate_calculation_columns=False,  # gammas need the first
        )
        linker = Linker(db_api.register("oneid_input"), settings, log_level=logging.ERROR)

        t = time.perf_counter()
        strict = _strict_rules(chosen, counts, by_name, n)
        say(f"prior from {len(strict)} strict rule(s)")
        try:
            linker.training.estimate_probability_two_random_records_match(strict, recall=0.7)
        except Exception as exc:  # no pair satisfies the strict rules: a small file of singletons
            log.info("prior from strict rules failed (%s); using 1/n", exc)
            linker._settings_obj._probability_two_random_records_match = min(0.5, 1.0 / max(n, 2))
        say("u by random sampling")
        linker.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs(n), seed=seed)
        em_pairs = em_max_pairs or float(min(2e6, max(2e5, 2 * n)))
        for key in training:
            say(f"EM on {describe(key)}")
            linker.training.estimate_parameters_using_expectation_maximisation(_rule_sql(key), max_pairs=em_pairs)
        timings["train"] = time.perf_counter() - t
        blocking_labels = [describe(k) for k in chosen] + (["cluster"] if multi_clusters else [])
        training_labels = [describe(k) for k in training]
    else:
        known = {c["output_column_name"] for c in model.get("comparisons", [])}
        if known != set(by_name):
            raise ValueError(f"the stored model compares {sorted(known)}, these records have {sorted(by_name)}: "
                             "retrain")
        settings = dict(model)
        if dirty is not None:  # only pairs touching a new or changed record
            settings["blocking_rules_to_generate_predictions"] = [
                {**rule, "blocking_rule": f"({rule['blocking_rule']}) and (l.dirty or r.dirty)"}
                if isinstance(rule, dict) else f"({rule}) and (l.dirty or r.dirty)"
                for rule in model["blocking_rules_to_generate_predictions"]]
        linker = Linker(db_api.register("oneid_input"), settings, log_level=logging.ERROR)
        blocking_labels, training_labels = ["stored model"], []
        timings["train"] = 0.0
    t = time.perf_counter()
    say("scoring pairs")
    predictions = linker.inference.predict(threshold_match_probability=candidate_floor)
    gammas = ", ".join(f"gamma_{c.name}" for c in cols)
    scored = _fetch(con, f"select least(record_l, record_r) as record_l, greatest(record_l, record_r) as record_r, "
                         f"match_probability, {gammas} from {predictions.physical_name}")
    predictions.drop_table_from_database_and_remove_from_cache()
    if previous is not None and previous.num_rows:
        scored = pa.concat_tables([previous.select(scored.column_names).cast(scored.schema), scored])
    timings["predict"] = time.perf_counter() - t
    trained = model or linker.misc.save_model_to_json()
    if own:
        con.close()

    t = time.perf_counter()
    result = _merge(n, cluster, joined_by, scored, cols, rules, exclusive or {}, rejected)
    result.hubs = hubs
    result.blocking_rules, result.training_rules = blocking_labels, training_labels
    result.model, result.scored = trained, scored
    result.rescored = n if dirty is None or model is None else int(np.count_nonzero(dirty))
    timings["merge"] = time.perf_counter() - t
    result.timings = timings
    return result


def u_max_pairs(n: int) -> float:
    """Random pairs for u: 100 per record, between 0.3M and 5M (a few thousand records then take
    seconds, a million about a minute on 2 cores)."""
    return float(min(5e6, max(3e5, 100 * n)))


def _strict_rules(chosen, counts, by_name, n) -> list[str]:
    """Deterministic rules that admit few false positives: the chosen keys extended by one more column."""
    names = [c for c in by_name if by_name[c].kind != "number"]
    out = []
    for key in chosen:
        extra = [c for c in names if c not in key]
        if len(key) >= 3 or not extra:
            out.append(_rule_sql(key))
            continue
        out.append(_rule_sql(tuple(key) + (extra[0],)))
        if len(key) == 1 and len(extra) > 1:
            out.append(_rule_sql(tuple(key) + (extra[1],)))
    return out[:6]


def _merge(n: int, cluster: np.ndarray, joined_by: np.ndarray, scored: pa.Table, cols: list[_Col],
           rules: MergeRules, exclusive: dict[str, np.ndarray], rejected: Sequence[tuple[int, int]]) -> LinkResult:
    left = scored["record_l"].to_numpy().astype(np.int64)
    right = scored["record_r"].to_numpy().astype(np.int64)
    prob = scored["match_probability"].to_numpy(zero_copy_only=False).astype(np.float64)
    # deterministic order: strongest first, then by record numbers
    order = np.lexsort((right, left, -prob))
    left, right, prob = left[order], right[order], prob[order]
    gamma = [scored[f"gamma_{c.name}"].to_numpy(zero_copy_only=False)[order] for c in cols]
    del scored

    cl, cr = cluster[left], cluster[right]
    same = cl == cr
    link = (prob >= rules.threshold) & ~same

    # exclusive values per deterministic cluster (a cluster holds at most one per type after resolve_strong)
    excl_codes = []
    for t, values in exclusive.items():
        arr = pa.array(values, pa.string())
        enc = pc.dictionary_encode(arr)
        code = enc.indices.to_numpy(zero_copy_only=False)
        code = np.where(enc.indices.is_valid().to_numpy(zero_copy_only=False), code, -1).astype(np.int64)
        per_cluster = np.full(n, -1, dtype=np.int64)
        np.maximum.at(per_cluster, cluster, code)
        excl_codes.append((t, per_cluster))

    # components of clusters linked by pairs over the threshold; conflicted ones are built edge by edge
    a, b = cl[link], cr[link]
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    conflicted = np.zeros(n_comp, dtype=bool)
    roots = np.unique(cluster)
    for _, per_cluster in excl_codes:
        v = per_cluster[roots]
        has = v >= 0
        low = np.full(n_comp, np.iinfo(np.int64).max)
        high = np.full(n_comp, -1)
        np.minimum.at(low, comp[roots[has]], v[has])
        np.maximum.at(high, comp[roots[has]], v[has])
        conflicted |= (high >= 0) & (low != high)
    rejected = [(int(x), int(y)) for x, y in rejected]
    for x, y in rejected:
        if comp[cluster[x]] == comp[cluster[y]] and cluster[x] != cluster[y]:
            conflicted[comp[cluster[x]]] = True

    edge_idx = np.flatnonzero(link)
    accepted = np.zeros(len(prob), dtype=bool)
    clean_edges = edge_idx[~conflicted[comp[cl[edge_idx]]]]
    accepted[clean_edges] = True
    cuts: list[Cut] = []
    bad_edges = edge_idx[conflicted[comp[cl[edge_idx]]]]
    if len(bad_edges):
        accepted_bad, cuts = _kruskal_with_constraints(bad_edges, cl, cr, left, right, prob, excl_codes, rejected,
                                                       cluster)
        accepted[accepted_bad] = True

    # a spanning forest of the accepted links, strongest links first; confidence = weakest link on the
    # path from the identity's oldest cluster
    acc = np.flatnonzero(accepted)
    weight = (1.0 + 1e-9) - prob[acc]
    forest = minimum_spanning_tree(coo_matrix((weight, (cl[acc], cr[acc])), shape=(n, n)).tocsr())
    forest = forest + forest.T
    n_comp2, comp2 = connected_components(forest, directed=False)
    first = np.full(n_comp2, n, dtype=np.int64)
    np.minimum.at(first, comp2, np.arange(n))
    final_root_of_cluster = first[comp2]

    # one breadth-first pass over the forest from a virtual node tied to each identity's oldest cluster
    confidence_of_cluster = np.ones(n)
    evidence_of_cluster = np.full(n, None, dtype=object)
    multi = np.flatnonzero(np.bincount(comp2, minlength=n_comp2) > 1)
    if len(multi):
        starts = first[multi]
        fc = forest.tocoo()
        rows = np.concatenate([fc.row, np.full(len(starts), n), starts])
        cols_ = np.concatenate([fc.col, starts, np.full(len(starts), n)])
        tree = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols_)), shape=(n + 1, n + 1)).tocsr()
        nodes, pred = breadth_first_order(tree, n, directed=True, return_predecessors=True)
        nodes = nodes[1:]
        parents = pred[nodes]
        linked = parents != n
        nodes, parents = nodes[linked], parents[linked]
        # the accepted edge between each node and its parent
        lo, hi = np.minimum(cl[acc], cr[acc]), np.maximum(cl[acc], cr[acc])
        key = lo * n + hi
        key_order = np.argsort(key, kind="stable")
        want = np.minimum(nodes, parents) * n + np.maximum(nodes, parents)
        pos = key_order[np.searchsorted(key[key_order], want)]
        edge = acc[pos]
        p_edge = prob[edge]
        conf = confidence_of_cluster
        for node, parent, p in zip(nodes.tolist(), parents.tolist(), p_edge.tolist()):
            conf[node] = min(conf[parent], p)
        agreeing_edge = _agreeing(cols, [g[edge] for g in gamma])
        text = pc.binary_join_element_wise(
            pa.array([f"splink p={p:.3f}" for p in p_edge.tolist()], pa.string()), agreeing_edge, " ")
        evidence_of_cluster[nodes] = np.array(text.to_pylist(), dtype=object)

    record = np.arange(n)
    root = final_root_of_cluster[cluster]
    confidence = confidence_of_cluster[cluster]
    evidence = np.where(evidence_of_cluster[cluster] == None, joined_by, evidence_of_cluster[cluster])  # noqa: E711
    evidence = np.where(evidence == None, "self", evidence).astype(object)  # noqa: E711
    # a record joined to its deterministic cluster and not the oldest of the identity: keep the rule
    det_in_linked = (evidence_of_cluster[cluster] != None) & (joined_by != None) & (record != cluster)  # noqa: E711
    evidence[det_in_linked] = np.char.add(np.char.add(evidence[det_in_linked].astype(str), "; "),
                                          joined_by[det_in_linked].astype(str)).astype(object)
    # records of the oldest cluster are in with certainty unless their cluster itself was linked
    confidence[root == record] = 1.0
    evidence[(root == record) & (joined_by == None) & (evidence_of_cluster[cluster] == None)] = "self"  # noqa: E711

    decision = np.full(len(prob), "candidate", dtype=object)
    decision[(prob >= rules.review_floor) & (prob < rules.threshold) & ~same] = "review"
    decision[same] = np.where(prob[same] < rules.review_floor, "doubted", "confirmed")
    decision[link] = "cut"
    decision[accepted] = "merged"
    decision[link & ~accepted & (root[left] == root[right])] = "redundant"
    pairs = pa.table({"record_l": left, "record_r": right, "probability": prob,
                      "agreeing": _agreeing(cols, gamma), "same_cluster": same,
                      "decision": pa.array(decision.tolist(), pa.string())})
    return LinkResult(root=root, confidence=confidence, evidence=evidence, pairs=pairs, cuts=cuts)


def _agreeing(cols: list[_Col], gamma: list[np.ndarray]) -> pa.Array:
    """Per pair, the labels of the comparisons that found some similarity (gamma above 'else')."""
    parts = [pa.array(np.where(g > 0, col.label, None), pa.string()) for col, g in zip(cols, gamma)]
    joined = pc.binary_join_element_wise(*parts, ",", null_handling="skip")
    return joined


def _kruskal_with_constraints(edges, cl, cr, left, right, prob, excl_codes, rejected, cluster):
    """Link clusters edge by edge, strongest first (edges are already in that order), skipping an
    edge that would join two different exclusive values or a rejected pair."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    held = [{int(c): int(v[c]) for c in set(cl[edges].tolist()) | set(cr[edges].tolist()) if v[c] >= 0}
            for _, v in excl_codes]
    names = [t for t, _ in excl_codes]
    apart: dict[int, set[int]] = {}
    for x, y in rejected:
        cx, cy = int(cluster[x]), int(cluster[y])
        apart.setdefault(cx, set()).add(cy)
        apart.setdefault(cy, set()).add(cx)
    accepted, cuts = [], []
    for i in edges.tolist():
        x, y = find(int(cl[i])), find(int(cr[i]))
        if x == y:
            continue
        reason = None
        for t, h in zip(names, held):
            if x in h and y in h and h[x] != h[y]:
                reason = f"different {t}"
        if reason is None and any(find(o) == y for o in apart.get(x, ())):
            reason = REJECTED
        if reason:
            cuts.append(Cut(int(left[i]), int(right[i]), float(prob[i]), reason))
            continue
        keep, gone = min(x, y), max(x, y)
        parent[gone] = keep
        for h in held:
            if gone in h:
                h.setdefault(keep, h.pop(gone))
        if gone in apart:
            apart.setdefault(keep, set()).update(apart.pop(gone))
        accepted.append(i)
    return np.array(accepted, dtype=np.int64), cuts
