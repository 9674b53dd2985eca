"""Landing a dropped file's parts and an API pull's pages, in worker processes for large loads.

CSV and Parquet parts and API pages of flat records land column by column where they can: the values
become Arrow columns; the common shapes (a bare mainland mobile, an e-mail that only needs
lower-casing, an ISO timestamp with its offset) are checked, typed and normalised as whole columns,
and `_raw` is joined from the columns. Every other value goes through the per-value functions of
record landing (landing.py), and every row that would be a dead letter, or whose `_raw` needs JSON
escapes, lands by the record path. What comes out is what landing the records one by one gives, row
for row (tests/unit/test_landing_columnar.py), for about half the CPU a contact: the Python per row
goes, the C calls per value stay (HMAC tokens, AES-GCM ciphertexts, the record hash). JSONL files,
records of other shapes and specs with record-level steps land record by record.
"""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from assets.ingestion.files import Chunk, chunk_parts, csv_cells, csv_record
from assets.ingestion.landing import (_ARROW_TYPES, _CONVERTERS, _MISSING, DeadLetter, Landed, LandingContext,
                                      Processed, _block_schema, _gc_paused, _land, _Memo, converted_or_error, merge)
from assets.ingestion.specs import EntitySpec
from fincdp.pii import InvalidValue, is_c3_name, is_mobile_number


def land_part(spec: EntitySpec, chunk: Chunk, ctx: LandingContext, spool: str | None = None
              ) -> tuple[Landed, int, bool]:
    """Parse and land a part of a dropped file: (landed, its records, whether it ends its chunk, which
    landing.merge then makes of its parts). Worker processes hand the rows over in a file in the
    `spool` directory."""
    with _gc_paused():
        landed = land_csv_part(spec, chunk, ctx) if chunk.fmt == "csv" else \
            land_parquet_part(spec, chunk, ctx) if chunk.fmt == "parquet" else None
        if landed is None:
            records, refs, failed, strict = chunk_parts(chunk)
            landed = _land(spec, records, refs, ctx, strict=strict)
            landed.rejected = [DeadLetter(r.ref, None, "parse", r.parse_error, r.record) for r in failed]
        if spool is not None:
            landed.spool(spool)
    return landed, chunk.size, chunk.ends_chunk


def land_page(spec: EntitySpec, page: tuple[list, list[str], Any], ctx: LandingContext) -> tuple[Processed, Any]:
    """Land one page of an API pull (records, refs, next cursor)."""
    records, refs, next_cursor = page
    with _gc_paused():
        landed = land_records(spec, records, refs, ctx)
        if landed is None:
            landed = _land(spec, records, refs, ctx)
        return merge(spec, [landed], ctx), next_cursor


_TEXT_KINDS = ("phone", "email", "id_number", "ip")  # personal data held in one text value
_SCALAR_TYPES = ("string", "int", "float", "decimal", "bool", "timestamp", "epoch", "date")
_NULL = type(None)

# JSON writes these escaped; a row holding one lands by the record path, which writes `_raw` by orjson.
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'
# What normalize_phone turns into +86 and the number, unchanged otherwise.
_BARE_MOBILE = r"^1[3-9][0-9]{9}$"
# E-mails normalize_email leaves as they are once lower-cased: ASCII (so NFKC changes nothing), no white
# space to strip, one @, no dot at either end of the local part, no two dots anywhere (checked apart).
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~\-]+"
_PLAIN_EMAIL = rf"^{_ATOM}(\.{_ATOM})*@[a-z0-9.\-]+\.[a-z0-9\-]{{2,}}$"
# Timestamps with an offset that datetime.fromisoformat and Arrow's cast both read, to the same instant.
_ISO_TIMESTAMP = (r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                  r"(\.[0-9]{3}|\.[0-9]{6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")


@functools.lru_cache(maxsize=256)
def _columnar(spec: EntitySpec, keys: tuple) -> bool:
    """Whether records with these keys land column by column: the spec has no record-level steps
    (flatten, checks, payload scans) and only fields this module types; the keys are text, none of them
    C3 (which would make every row a dead letter) or `_file` (which a file's record sets)."""
    if spec.flatten is not None or spec.checks or spec.scan_json_pii:
        return False
    for f in spec.fields:
        if f.credit_code or f.enum is not None and (f.type != "string" or not all(isinstance(v, str) for v in f.enum)):
            return False
        if f.pii is not None and f.pii not in _TEXT_KINDS:
            return False
        if f.pii is None and f.type not in _SCALAR_TYPES:
            return False
    return (all(key.__class__ is str for key in keys) and len(set(keys)) == len(keys) and "_file" not in keys
            and not any(is_c3_name(key) for key in keys))


def land_csv_part(spec: EntitySpec, chunk: Chunk, ctx: LandingContext) -> Landed | None:
    """The CSV part landed column by column, or None when its header or spec needs the record path
    throughout."""
    header, line_numbers, rows = chunk.data
    if not _columnar(spec, tuple(header)):
        return None
    width = len(header)
    cells: list[list[str]] = []
    index: list[int] = []  # the input row of each of `cells`
    for i, row in enumerate(rows):
        row = csv_cells(row)
        if len(row) == width:  # others are dead letters or need csv.DictReader's restkey/restval
            cells.append(row)
            index.append(i)
    columns = {name: pa.array(values, pa.string()) for name, values in zip(header, zip(*cells))} if cells else {}
    return _land_by_columns(spec, ctx, len(rows), index, columns, {"_file": chunk.name},
                            record=lambda i: csv_record(header, csv_cells(rows[i]), chunk.name),
                            ref=lambda i: f"{chunk.name}:{line_numbers[i]}", strict=True)


def land_parquet_part(spec: EntitySpec, chunk: Chunk, ctx: LandingContext) -> Landed | None:
    """The Parquet part landed column by column, or None when a column is neither text nor true/false
    (its values' text in `_raw` is the record path's to write) or the spec needs the record path."""
    table: pa.Table = chunk.data
    if not _columnar(spec, tuple(table.column_names)):
        return None
    columns: dict[str, pa.Array] = {}
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        if not (pa.types.is_string(column.type) or pa.types.is_boolean(column.type)):
            return None
        columns[name] = column.combine_chunks()
    if not _text_where_needed(spec, columns):
        return None

    def record(i: int) -> dict:
        return {**table.slice(i, 1).to_pylist()[0], "_file": chunk.name}

    return _land_by_columns(spec, ctx, table.num_rows, range(table.num_rows), columns, {"_file": chunk.name},
                            record=record, ref=lambda i: f"{chunk.name}:row {chunk.first + 1 + i}", strict=False)


def land_records(spec: EntitySpec, records: list, refs: list[str], ctx: LandingContext) -> Landed | None:
    """An API page landed column by column, or None when its records need the record path: they must
    all have the same keys, with text, true/false or null values (text in personal data, enums and ids)."""
    if not records or records[0].__class__ is not dict:
        return None
    keys = tuple(records[0])
    if not keys or not _columnar(spec, keys):
        return None
    try:
        values = list(zip(*map(operator.itemgetter(*keys), records))) if len(keys) > 1 else \
            [tuple(record[keys[0]] for record in records)]
        if len(set(map(len, records))) != 1:  # every record has these keys and no other
            return None
    except (KeyError, TypeError):  # a record without one of them, or not an object
        return None
    columns: dict[str, pa.Array] = {}
    for key, column in zip(keys, values):
        kinds = set(map(type, column))
        if kinds <= {str, _NULL}:
            try:
                columns[key] = pa.array(column, pa.string())
            except (pa.ArrowException, UnicodeError):  # text with a lone surrogate: the record path says which
                return None
        elif kinds <= {bool, _NULL}:
            columns[key] = pa.array(column, pa.bool_())
        else:
            return None
    if not _text_where_needed(spec, columns):
        return None
    return _land_by_columns(spec, ctx, len(records), range(len(records)), columns, {},
                            record=records.__getitem__, ref=refs.__getitem__, strict=False)


def _text_where_needed(spec: EntitySpec, columns: dict[str, pa.Array]) -> bool:
    """Whether the columns read as text (personal data, enums, ids) are text, not true/false."""
    for f in spec.fields:
        column = columns.get(f.name)
        if column is not None and (f.pii is not None or f.enum is not None) and not pa.types.is_string(column.type):
            return False
    return all(pa.types.is_string(columns[key].type) for key in spec.id_fields if key in columns)


def _land_by_columns(spec: EntitySpec, ctx: LandingContext, n: int, index, columns: dict[str, pa.Array],
                     constants: dict[str, str], *, record: Callable[[int], Any], ref: Callable[[int], str],
                     strict: bool) -> Landed:
    """Land n records, of which those at `index` are `columns` (the others and the rows that fail a check
    land by the record path, from record(i)); constants are keys every record has with one value."""
    memo = _Memo()
    rows = len(index)
    texts = [values for values in columns.values() if pa.types.is_string(values.type)]
    if texts:  # a row's texts joined, searched once: a search a column costs twice as much
        fails = pc.match_substring_regex(
            pc.binary_join_element_wise(*texts, "", null_handling="replace", null_replacement=""), _NEEDS_ESCAPE)
    else:
        fails = pa.array([False] * rows, pa.bool_())
    typed: dict[str, pa.Array] = {}
    for f in spec.fields:
        values = columns.get(f.name)
        if values is None:
            continue
        missing = _missing(values)
        if f.required:
            fails = pc.or_(fails, missing)
        if f.pii is None:
            typed[f.name], failed = _typed(ctx, f.type, values, missing, memo.typed.setdefault(f.name, {}))
            if failed is not None:
                fails = pc.or_(fails, failed)
            if f.enum is not None:  # text fields only (_columnar)
                outside = pc.invert(pc.is_in(values, pa.array(f.enum, pa.string())))
                fails = pc.or_(fails, pc.and_(outside, pc.invert(missing)))

    ok = pc.invert(fails)
    kept = [i for i, good in zip(index, ok.to_pylist()) if good]
    if len(kept) < rows:
        columns = {name: values.filter(ok) for name, values in columns.items()}
        typed = {name: values.filter(ok) for name, values in typed.items()}
    fast = _land_columns(spec, constants, columns, typed, len(kept), ctx, memo) if kept else None
    if len(kept) == n:
        return fast

    taken = set(kept)
    slow = [i for i in range(n) if i not in taken]
    # Refs the record path cannot confuse (an API page may repeat a ref), put right in its dead letters.
    rest = _land(spec, [record(i) for i in slow], [str(j) for j in range(len(slow))], ctx, strict=strict)
    dead_rows = set()
    for letter in rest.dead:
        j = int(letter.record_ref)
        dead_rows.add(j)
        letter.record_ref = ref(slow[j])
    if fast is None:
        rest.received = n
        return rest
    landed_rows = kept + [i for j, i in enumerate(slow) if j not in dead_rows]
    by_input = sorted(range(len(landed_rows)), key=landed_rows.__getitem__)
    table = pa.concat_tables([fast.table, rest.table]).take(pa.array(by_input, pa.int64()))
    source_ids = fast.source_ids + rest.source_ids
    return Landed(table, [source_ids[j] for j in by_input], rest.dead, n)


def _missing(values: pa.Array) -> pa.Array:
    """Null or empty text: what record landing takes for a missing value."""
    if pa.types.is_string(values.type):
        return pc.equal(values, "").fill_null(True)
    return pc.is_null(values)


def _typed(ctx: LandingContext, kind: str, values: pa.Array, missing: pa.Array, memo: dict
           ) -> tuple[pa.Array, pa.Array | None]:
    """(the field's column, which values fail to convert or None): what landing's converters make of
    each value, a missing one being null."""
    text = pa.types.is_string(values.type)
    if kind == "string" and text:
        return pc.if_else(missing, pa.scalar(None, pa.string()), values), None
    target = _ARROW_TYPES[kind]
    done = None
    rest = pc.invert(missing)
    if kind == "timestamp" and text:
        common = pc.match_substring_regex(values, _ISO_TIMESTAMP).fill_null(False)
        try:
            done = pc.if_else(common, values, pa.scalar(None, pa.string())).cast(target)
            rest = pc.and_(rest, pc.invert(common))
        except pa.ArrowInvalid:  # e.g. 30 February: those go value by value, as all others do
            done = None
    positions = pc.indices_nonzero(rest).to_pylist()
    if not positions and done is not None:
        return done, None
    converted, failed = [], [False] * len(values)
    convert = _CONVERTERS[kind]
    for position, value in zip(positions, _texts(values, positions)):
        if value.__class__ is str:  # text is converted once per batch; true and 1 are one dict key
            result = memo.get(value, _MISSING)
            if result is _MISSING:
                result = memo[value] = converted_or_error(convert, value, ctx)
        else:
            result = converted_or_error(convert, value, ctx)
        if isinstance(result, InvalidValue):
            failed[position] = True
            result = None
        converted.append(result)
    if done is None:
        done = pa.nulls(len(values), target)
    if positions:
        mask = pa.array(_positions_mask(positions, len(values)), pa.bool_())
        done = pc.replace_with_mask(done, mask, pa.array(converted, target))
    return done, pa.array(failed, pa.bool_()) if any(failed) else None


def _texts(values: pa.Array, positions: list[int]) -> list:
    return values.take(pa.array(positions, pa.int64())).to_pylist()


def _positions_mask(positions: list[int], n: int) -> list[bool]:
    mask = [False] * n
    for position in positions:
        mask[position] = True
    return mask


def _land_columns(spec: EntitySpec, constants: dict[str, str], columns: dict[str, pa.Array],
                  typed: dict[str, pa.Array], n: int, ctx: LandingContext, memo: _Memo) -> Landed:
    """Rows that need no record path: every value converts, no row is a dead letter."""
    out: dict[str, pa.Array | list] = {}
    flags: list[list[str] | None] = [None] * n
    stand_ins: dict[str, pa.Array] = {}  # PII field -> what `_raw` holds for it
    for f in spec.fields:
        values = columns.get(f.name)
        if f.pii is None:
            out[f.name] = typed[f.name] if values is not None else pa.nulls(n, _ARROW_TYPES[f.type])
            continue
        if values is None:
            out[f"{f.name}_token"], out[f"{f.name}_enc"] = pa.nulls(n, pa.string()), pa.nulls(n, pa.binary())
            if f.pii == "phone":
                out[f"{f.name}_is_mobile"] = pa.nulls(n, pa.bool_())
            continue
        tokens, ciphertexts, mobile, stand_ins[f.name] = _protect(ctx, f.name, f.pii, values, memo, flags)
        out[f"{f.name}_token"], out[f"{f.name}_enc"] = tokens, ciphertexts
        if f.pii == "phone":
            out[f"{f.name}_is_mobile"] = mobile

    raws = _raw_column(constants, columns, stand_ins)
    _, offset_buffer, data_buffer = raws.buffers()
    offsets = memoryview(offset_buffer).cast("i")[raws.offset:raws.offset + n + 1].tolist()
    data = memoryview(data_buffer or b"")
    hashes = ctx.cipher.record_hashes(data[a:b] for a, b in zip(offsets, offsets[1:]))
    source_ids = _source_ids(spec, constants, columns, n)
    out.update({"_source_id": source_ids, "_record_hash": hashes, "_raw": raws,
                "_dq_flags": [found or [] for found in flags]})
    schema = _block_schema(spec)
    arrays = [column if isinstance(column, (pa.Array, pa.ChunkedArray)) else pa.array(column, f.type)
              for f, column in ((f, out[f.name]) for f in schema)]
    table = pa.Table.from_batches([pa.RecordBatch.from_arrays(arrays, schema=schema)])
    return Landed(table, source_ids, [], n)


def _protect(ctx: LandingContext, field: str, kind: str, values: pa.Array, memo: _Memo,
             flags: list[list[str] | None]) -> tuple[list, list, list | None, pa.Array]:
    """(tokens, ciphertexts, is-mobile flags, `_raw` stand-ins) of a personal-data column; values of the
    common shape normalised as a column, the rest value by value (landing's _protect_text)."""
    n = len(values)
    if kind == "phone":
        common = pc.match_substring_regex(values, _BARE_MOBILE).fill_null(False)
        normalized = pc.binary_join_element_wise("+86", values, "")
    elif kind == "email":
        normalized = pc.ascii_lower(values)
        common = pc.and_(pc.and_(pc.string_is_ascii(values), pc.match_substring_regex(normalized, _PLAIN_EMAIL)),
                         pc.invert(pc.match_substring(values, ".."))).fill_null(False)
    else:
        common = pa.array([False] * n, pa.bool_())
        normalized = values
    common_rows = pc.indices_nonzero(common).to_pylist()
    rest = pc.indices_nonzero(pc.and_(pc.invert(common), pc.invert(_missing(values)))).to_pylist()

    tokens: list = [None] * n
    plaintexts: list = [None] * n
    stand_in: list = values.to_pylist() if rest else []
    mobile: list = [None] * n
    common_values = _texts(normalized, common_rows)
    for i, token in zip(common_rows, ctx.cipher.tokens(kind, common_values)):
        tokens[i] = token
    for i, plaintext in zip(common_rows, common_values):
        plaintexts[i] = plaintext
    if kind == "phone":
        for i in common_rows:
            mobile[i] = True
    protected = memo.protected
    for i, text in zip(rest, _texts(values, rest)):
        token, plaintexts[i], stand_in[i], message = protected(ctx, kind, text)
        tokens[i] = token
        if message:
            if flags[i] is None:
                flags[i] = []
            flags[i].append(f"{field}: {message}")
        if kind == "phone" and token is not None:
            mobile[i] = is_mobile_number(plaintexts[i])
    present = [i for i in range(n) if plaintexts[i] is not None] if rest or len(common_rows) < n else range(n)
    ciphertexts: list = [None] * n
    for i, blob in zip(present, ctx.cipher.encrypt_many(field, [plaintexts[i] for i in present])):
        ciphertexts[i] = blob
    token_array = pa.array(tokens, pa.string())
    if rest:
        for i in common_rows:
            stand_in[i] = "tok:" + tokens[i]
        stand_ins = pa.array(stand_in, pa.string())
    else:  # "tok:" and the token where there is a value, the empty text where there is none
        stand_ins = pc.if_else(pc.equal(values, ""), values,
                               pc.binary_join_element_wise("tok:", token_array.fill_null(""), ""))
    return token_array, ciphertexts, mobile if kind == "phone" else None, stand_ins


def _raw_column(constants: dict[str, str], columns: dict[str, pa.Array], stand_ins: dict[str, pa.Array]
                ) -> pa.Array:
    """canonical_json of each row's record (keys sorted), personal data replaced by its stand-in: the rows
    hold no text that needs JSON escapes, so a text value is its text in quotes."""
    pieces: list = []
    literal = "{"
    for i, key in enumerate(sorted([*columns, *constants])):
        literal += ("," if i else "") + orjson.dumps(key).decode() + ":"
        if key in constants:
            literal += orjson.dumps(constants[key]).decode()
        else:
            pieces += [literal, _json_values(stand_ins.get(key, columns[key]))]
            literal = ""
    pieces.append(literal + "}")
    return pc.binary_join_element_wise(*pieces, "")


def _json_values(values: pa.Array) -> pa.Array:
    """Each value as JSON: text (needing no escapes) in quotes, true or false, null."""
    if pa.types.is_string(values.type):
        return pc.binary_join_element_wise('"', values, '"', "").fill_null("null")
    return pc.if_else(values, "true", "false").fill_null("null")


def _source_ids(spec: EntitySpec, constants: dict[str, str], columns: dict[str, pa.Array], n: int) -> list[str]:
    """landing's source ids: the id fields joined with ':' (a missing one as None)."""
    parts = [constants[key] if key in constants else columns[key].fill_null("None") if key in columns else "None"
             for key in spec.id_fields]
    if all(isinstance(part, str) for part in parts):
        return [":".join(parts)] * n
    if len(parts) == 1:
        return parts[0].to_pylist()
    return pc.binary_join_element_wise(*parts, ":").to_pylist()
