"""`fincdp oneid resolve`: try OneID's rules on any file, with the pipeline's own code path.

A mapping (YAML) names the record-id column and maps other columns to identifier types (normalised by
`fincdp.oneid.identifiers`, merged by `resolve_strong` with the same hub limits and conflict rules as
the pipeline) or to comparison attributes of a kind for the probabilistic stage
(`fincdp.oneid.probabilistic`). Records are numbered in file order: the first row is the oldest, so
an identity is named after its first record and reruns give the same ids.
"""
from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from fincdp.oneid.deterministic import Conflict, resolve_strong
from fincdp.oneid.identifiers import IDENTIFIER_TYPES, normalize_identifier
from fincdp.oneid.identity import mint
from fincdp.oneid.probabilistic import ATTRIBUTE_KINDS, Attribute, Cut, Evidence, link
from fincdp.oneid.rules import MergeRules

ENTERPRISE_TYPES = {name for name, t in IDENTIFIER_TYPES.items() if t.entity == "enterprise"}


class MappingError(ValueError):
    """A mapping that cannot be used; the message names the file, the entry and the problem."""


def _one_of(known, what: str):
    def check(value: str) -> str:
        if value not in known:
            raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")
        return value
    return check


class IdentifierColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str
    type: Annotated[str, AfterValidator(_one_of(IDENTIFIER_TYPES, "identifier type"))]


class AttributeColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    column: str
    kind: Annotated[str, AfterValidator(_one_of(ATTRIBUTE_KINDS, "attribute kind"))]


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    record_id: str
    identifiers: list[IdentifierColumn] | None = Field(default_factory=list)
    attributes: list[AttributeColumn] | None = Field(default_factory=list)
    # optional per-type rule overrides, as a tenant's oneid_merge_rules: {phone: {max_records: 3}}
    rules: dict[str, dict] | None = None
    entity: Literal["person", "enterprise"] | None = None

    def columns(self) -> list[str]:
        return [self.record_id] + [i.column for i in self.identifiers or []] + [a.column for a in self.attributes or []]

    def check_columns(self, available: list[str], source: str = "the input") -> None:
        missing = [c for c in dict.fromkeys(self.columns()) if c not in available]
        if missing:
            raise MappingError(f"column(s) {', '.join(repr(c) for c in missing)} named in the mapping are not in "
                               f"{source}; its columns: {', '.join(available)}")

    def merge_rules(self, threshold: float | None = None) -> MergeRules:
        try:
            return MergeRules.with_overrides(self.rules, threshold=threshold)
        except (ValidationError, ValueError) as exc:
            raise MappingError(f"rules: {exc}") from None


def load_mapping(path: Path) -> Mapping:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc}") from None
    if not isinstance(raw, dict):
        raise MappingError(f"{path}: a mapping must be a YAML object with record_id, identifiers, attributes")
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            entry = _entry(raw, err["loc"])
            problems.append(f"{where}{entry}: {err['msg'].removeprefix('Value error, ')}")
        raise MappingError(f"{path}: " + "; ".join(problems)) from None


def _entry(raw: dict, loc: tuple) -> str:
    """' (column mobile)' for an error inside an identifiers/attributes entry."""
    if len(loc) >= 2 and loc[0] in ("identifiers", "attributes") and isinstance(loc[1], int):
        try:
            item = raw[loc[0]][loc[1]]
            return f" (column {item.get('column')!r})" if isinstance(item, dict) else ""
        except (KeyError, IndexError, TypeError):
            return ""
    return ""


# --- files ----------------------------------------------------------------------------------------

def read_table(path: Path) -> pa.Table:
    """CSV (every column as text: leading zeros kept) or Parquet, by extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if suffix in (".csv", ".txt"):
        import pyarrow.csv as pv

        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        return pv.read_csv(path, read_options=pv.ReadOptions(encoding="utf8"),
                           convert_options=pv.ConvertOptions(column_types={c: pa.string() for c in header},
                                                             strings_can_be_null=True))
    raise MappingError(f"{path}: unsupported input type {suffix!r}: use .csv or .parquet")


def write_table(table: pa.Table, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif suffix in (".csv", ".txt"):
        import pyarrow.csv as pv

        pv.write_csv(table, path)
    else:
        raise MappingError(f"{path}: unsupported output type {suffix!r}: use .csv or .parquet")


# --- resolution -----------------------------------------------------------------------------------

@dataclass
class Resolution:
    table: pa.Table                       # record_id, one_id, confidence, evidence, cluster_size
    pairs: pa.Table | None = None         # probabilistic pairs (record ids), with their decision
    conflicts: list[Conflict] = field(default_factory=list)
    cuts: list[Cut] = field(default_factory=list)
    hubs: list[tuple[str, str, int]] = field(default_factory=list)
    blocking_rules: list[str] = field(default_factory=list)
    training_rules: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def one_id_for(record_id: str, entity: str = "person") -> str:
    """The pipeline's minting (fincdp.oneid.identity.mint) with no tenant: a file is its own world."""
    return mint("", entity, record_id)


def _normalized_columns(values: pa.Array, identifier_type: str) -> tuple[pa.Array, pa.Array]:
    """Per record: the normalised value (or null) and whether it is a key; each distinct value once."""
    encoded = pc.dictionary_encode(pc.cast(values, pa.string()))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    norm = [normalize_identifier(identifier_type, v) for v in encoded.dictionary.to_pylist()]
    value = pa.array([x.value if x else None for x in norm], pa.string()).take(encoded.indices)
    key = pa.array([x.key if x else None for x in norm], pa.bool_()).take(encoded.indices)
    return value, key


def resolve_table(table: pa.Table, mapping: Mapping, *, threshold: float | None = None,
                  approved: list[tuple[int, int]] = (), rejected: list[tuple[int, int]] = (),
                  progress: Callable[[str], None] | None = None, seed: int = 42) -> Resolution:
    say = progress or (lambda message: None)
    mapping.check_columns(table.column_names)
    rules = mapping.merge_rules(threshold)
    n = table.num_rows
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ids = pc.cast(table[mapping.record_id], pa.string())
    if ids.null_count:
        raise MappingError(f"record_id column {mapping.record_id!r} has {ids.null_count} empty value(s)")
    record_ids = np.array(ids.to_pylist(), dtype=object)

    # identifiers: normalise, then strong keys merge deterministically
    say(f"{n} records: normalising {len(mapping.identifiers or [])} identifier column(s)")
    records, types, values = [], [], []
    normalised: list[tuple[IdentifierColumn, pa.Array, pa.Array]] = []
    for ident in mapping.identifiers or []:
        value, key = _normalized_columns(table[ident.column], ident.type)
        normalised.append((ident, value, key))
        strong = rules.rule(ident.type).strength == "strong"
        sel = pc.fill_null(key, False).to_numpy(zero_copy_only=False) if strong else np.zeros(n, bool)
        idx = np.flatnonzero(sel)
        records.append(idx)
        types.append(pa.array(np.full(len(idx), ident.type, dtype=object), pa.string()))
        values.append(value.take(pa.array(idx)))
    timings["normalise"] = time.perf_counter() - t0
    t = time.perf_counter()
    if records:
        strong_result = resolve_strong(n, np.concatenate(records), pa.concat_arrays(types), pa.concat_arrays(values),
                                       rules, approved=approved, rejected=rejected)
    else:
        strong_result = resolve_strong(n, np.zeros(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string()),
                                       rules, approved=approved, rejected=rejected)
    timings["deterministic"] = time.perf_counter() - t
    clusters = len(np.unique(strong_result.root))
    say(f"deterministic: {n - clusters} record(s) joined, {len(strong_result.hubs)} hub value(s) ignored, "
        f"{len(strong_result.conflicts)} conflicting link(s) cut ({timings['deterministic']:.1f} s)")

    root = strong_result.root
    confidence = np.ones(n)
    evidence = np.where(strong_result.joined_by == None, "self", strong_result.joined_by).astype(object)  # noqa: E711
    result = Resolution(table=pa.table({}), conflicts=strong_result.conflicts, hubs=strong_result.hubs)
    weak = [(i, v, k) for i, v, k in normalised if rules.rule(i.type).strength == "weak"]
    if mapping.attributes or weak:
        hub_values = {(t_, v_) for t_, v_, _ in strong_result.hubs}
        cols: dict[str, pa.Array] = {"record": pa.array(np.arange(n)), "cluster": pa.array(root)}
        evidence_cols, exclusive = [], {}
        for j, (ident, value, key) in enumerate(normalised):
            rule = rules.rule(ident.type)
            if rule.exclusive and rule.strength == "strong":
                valid = pc.if_else(pc.fill_null(key, False), value, pa.scalar(None, pa.string()))
                exclusive.setdefault(ident.type, np.array(valid.to_pylist(), dtype=object))
            if ident.type == "phone":  # a fixed line says "same desk", not "same person": no evidence (as in the pipeline)
                value = pc.if_else(pc.fill_null(key, False), value, pa.scalar(None, pa.string()))
            if hub_values:
                is_hub = pa.array([(ident.type, v) in hub_values for v in value.to_pylist()])
                value = pc.if_else(is_hub, pa.scalar(None, pa.string()), value)
            cols[f"id{j}"] = value
            evidence_cols.append(Evidence(f"id{j}", ident.type, ident.column))
        attributes = []
        for j, attr in enumerate(mapping.attributes or []):
            cols[f"at{j}"] = table[attr.column]
            attributes.append(Attribute(f"at{j}", attr.kind, attr.column))
        say("probabilistic stage (Splink): training on the file itself")
        t = time.perf_counter()
        linked = link(pa.table(cols), attributes, evidence_cols, rules, joined_by=strong_result.joined_by,
                      exclusive=exclusive, rejected=rejected, progress=say, seed=seed)
        timings["probabilistic"] = time.perf_counter() - t
        timings.update({f"probabilistic.{k}": v for k, v in linked.timings.items()})
        root, confidence, evidence = linked.root, linked.confidence, linked.evidence
        result.cuts, result.blocking_rules, result.training_rules = linked.cuts, linked.blocking_rules, linked.training_rules
        pairs = linked.pairs
        result.pairs = pa.table({
            "record_id_l": pa.array(record_ids[pairs["record_l"].to_numpy()], pa.string()),
            "record_id_r": pa.array(record_ids[pairs["record_r"].to_numpy()], pa.string()),
            "probability": pairs["probability"], "agreeing": pairs["agreeing"], "decision": pairs["decision"]})
        merged = pc.sum(pc.equal(pairs["decision"], "merged")).as_py() or 0
        review = pc.sum(pc.equal(pairs["decision"], "review")).as_py() or 0
        say(f"probabilistic: {pairs.num_rows} scored pair(s), {merged} merged, {review} for review, "
            f"{len(linked.cuts)} cut ({timings['probabilistic']:.1f} s)")

    t = time.perf_counter()
    entity = mapping.entity or ("enterprise" if mapping.identifiers and
                                all(i.type in ENTERPRISE_TYPES for i in mapping.identifiers) else "person")
    roots, inverse, sizes = np.unique(root, return_inverse=True, return_counts=True)
    one_ids = np.array([one_id_for(r, entity) for r in record_ids[roots].tolist()], dtype=object)
    result.table = pa.table({
        "record_id": pa.array(record_ids.tolist(), pa.string()),
        "one_id": pa.array(one_ids[inverse].tolist(), pa.string()),
        "confidence": pa.array(np.round(confidence, 4), pa.float64()),
        "evidence": pa.array(evidence.tolist(), pa.string()),
        "cluster_size": pa.array(sizes[inverse], pa.int64()),
    })
    timings["output"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    result.timings = timings
    return result


def resolve_file(input_path: Path, mapping_path: Path, output_path: Path, *, threshold: float | None = None,
                 pairs_path: Path | None = None, quiet: bool = False) -> Resolution:
    started = time.perf_counter()

    def say(message: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    mapping = load_mapping(mapping_path)
    table = read_table(input_path)
    mapping.check_columns(table.column_names, str(input_path))
    say(f"read {table.num_rows} records from {input_path}")
    result = resolve_table(table, mapping, threshold=threshold, progress=say)
    write_table(result.table, output_path)
    if pairs_path is not None and result.pairs is not None:
        write_table(result.pairs, pairs_path)
    identities = len(pc.unique(result.table["one_id"]))
    say(f"wrote {result.table.num_rows} records in {identities} identities to {output_path}")
    return result
