"""Fast paths of ODS landing agree with the plain ways they stand in for, on the edge cases."""
import csv
import io
import ipaddress
import json
import math
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from assets.ingestion import files, landing, parts
from assets.ingestion.landing import LandingContext, process
from assets.ingestion.specs import CRM_CONTACTS, EVENTS, FILE_CONTACTS
from fincdp import pii
from fincdp.pii import LocalKeyFileProvider, TenantCipher


@pytest.fixture
def ctx(tmp_path):
    cipher = TenantCipher.for_tenant("t001", LocalKeyFileProvider(tmp_path))
    return LandingContext("t001", frozenset({"hx_sh"}), "Asia/Shanghai", cipher, date(2026, 11, 25), "b1",
                          datetime(2026, 11, 26, tzinfo=timezone.utc))


def outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - comparing how both ways fail
        return type(exc).__name__, str(exc)


# --- the JSON text ODS keeps ------------------------------------------------------------------------

ODD_VALUES = [None, True, False, 0, -7, 2**63, 2**64, 2**70, -2**64, 1.5, 1e16, 1.5e-7, -0.0, 0.1 + 0.2,
              float("nan"), float("inf"), float("-inf"), "", "plain", '引号"和\\反斜杠', "ctl\x01\n\t\x7f\x1f", "%s %d %%",
              "\u2028\u2029", "😀 and \ufeff", "\ud800 lone", [1, "a", None], (2, "t"), {"b": 1, "a": [2]}, {},
              {"z": {"y": [{"x": float("nan")}]}}, Decimal("1.10"), Decimal("NaN"), b"bytes",
              datetime(2026, 11, 25, 10, tzinfo=timezone.utc), date(2026, 1, 1)]


def _json_compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def _same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_canonical_json_is_valid_utf8_json_of_the_same_value_as_json_writes_it(value):
    objects = [{"b": value, "a": "x", "%k": 1, 'q"uote': value, "é": 0, "a2": {"n": value}}, {"a": value}, {}]
    for obj in objects:
        text = landing.canonical_json(obj)
        decoded = text.decode("utf-8")  # valid UTF-8, whatever the value (lone surrogates come escaped)
        assert _same_value(json.loads(decoded), json.loads(_json_compact(obj)))  # nothing lost, NaN kept
        assert list(json.loads(decoded)) == sorted(obj)  # keys sorted
        if not any(isinstance(v, float) for v in (value,)) and "\ud800" not in str(value):
            assert decoded == _json_compact(obj)  # the same text as json's (floats may be spelt otherwise)
        if landing._finite(obj):
            assert landing.canonical_json(obj, finite=True) == text


def test_json_objects_put_stand_ins_in_place_of_values():
    objects = [{"mobile": "13812345678", "n": 1}, {"mobile": "13900000000", "n": 2}, {"n": 3, "mobile": None}]
    clean = {"k": "tok:abc"}
    stand_ins = {"mobile": ["tok:1", clean, None]}
    assert landing._json_objects(objects, stand_ins) == [
        b'{"mobile":"tok:1","n":1}', b'{"mobile":{"k":"tok:abc"},"n":2}', b'{"mobile":null,"n":3}']
    assert objects[0]["mobile"] == "13812345678"  # the records themselves are left as they are


# --- value conversions worked out once per distinct value -------------------------------------------

TIMESTAMPS = ["2026-11-25T10:00:00+08:00", "2026-11-25T10:00:00Z", "2026-11-25T10:00:00", "2026-11-25 10:00:00",
              "2026-11-25", "2026-11-25T10:00:00.123456-05:30", " 2026-11-25T10:00:00+08:00 ", "1988-07-01T12:00:00",
              "yesterday", "2026-02-30T10:00:00", "2026-11-25T25:00:00", "20261125T100000"]


def test_timestamps_parsed_once_per_text_match_the_per_row_parse(ctx):
    spec = FILE_CONTACTS
    records = [{"record_id": f"r{i}", "signed_up_at": TIMESTAMPS[i % len(TIMESTAMPS)], "_file": "f.csv"}
               for i in range(3 * len(TIMESTAMPS))]
    result = process(spec, records, [f"ref{i}" for i in range(len(records))], ctx)
    landed = dict(zip(result.table.column("record_id").to_pylist(), result.table.column("signed_up_at").to_pylist()))
    dead = {d.record_ref: (d.field, d.error_type, d.reason) for d in result.dead}
    for i, record in enumerate(records):
        expected = outcome(landing._to_timestamp, record["signed_up_at"], ctx)
        if expected[0] == "ok":
            assert landed[record["record_id"]] == expected[1]
        else:
            assert dead[f"ref{i}"] == ("signed_up_at", "invalid_type", f"field 'signed_up_at': {expected[1]}")
    assert len(landed) + len(dead) == len(records)


IPS = ["10.1.2.3", " 10.1.2.3 ", "255.255.255.255", "0.0.0.0", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
       "1.2.3.04", "١.٢.٣.٤", "::1", "2001:DB8::1", "::ffff:10.1.2.3", "fe80::1%eth0", "1.2.3.4\n", "bad", ""]


@pytest.mark.parametrize("text", IPS)
def test_ipv4_fast_path_agrees_with_ipaddress(text):
    expected = outcome(lambda t: (str(ipaddress.ip_address(str(t).strip())), None), text)
    got = outcome(landing._normalize_pii, "ip", text)
    assert got == expected if expected[0] == "ok" else got == ("InvalidValue", "not an IP address")


class _Text(str):
    """A str subclass: normalize_phone takes its general path for it."""


@pytest.mark.parametrize("text", ["13812345678", "19912345678", "12812345678", "10012345678", "1381234567",
                                  "138123456789", "１３８１２３４５６７８", "1٣812345678", "+8613812345678"])
def test_bare_mobile_fast_path_agrees_with_the_general_path(text):
    assert outcome(pii.normalize_phone, text) == outcome(pii.normalize_phone, _Text(text))


def test_id_number_region_lookup_cached_per_region_and_year():
    from stdnum.cn import ric

    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    for region in ("110105", "130000", "999999", "710000"):
        for year in ("1949", "1985", "2020"):
            base = region + year + "0612" + "123"
            number = base + "10X98765432"[sum(int(d) * w for d, w in zip(base, weights)) % 11]
            try:
                ric.get_birth_place(number)
                expected = (number, None)
            except Exception:
                expected = (number, "region code unknown for the birth year")
            assert pii.normalize_id_number(number) == expected


# --- batches larger than a block ------------------------------------------------------------------

def test_blocks_dedupe_and_dead_letter_across_the_whole_batch(ctx):
    n = 3 * landing.BLOCK_ROWS + 5
    records = [{"id": f"C{i}", "mobile": "13812345678", "updated_at": "2026-11-25T10:00:00+08:00"} for i in range(n)]
    records[2] = {"id": "DUP", "title": "newer", "updated_at": "2026-11-25T12:00:00+08:00"}
    records[n - 1] = {"id": "DUP", "title": "older", "updated_at": "2026-11-25T11:00:00+08:00"}
    records[landing.BLOCK_ROWS + 1] = {"id": "BAD", "updated_at": "not a time"}
    records[2 * landing.BLOCK_ROWS] = {"id": None, "updated_at": "2026-11-25T10:00:00+08:00"}
    refs = [f"r{i}" for i in range(n)]
    result = process(CRM_CONTACTS, records, refs, ctx)
    assert result.received == n and result.duplicates == 1 and result.table.num_rows == n - 3
    assert [(d.record_ref, d.field, d.error_type) for d in result.dead] == [
        (f"r{landing.BLOCK_ROWS + 1}", "updated_at", "invalid_type"), (f"r{2 * landing.BLOCK_ROWS}", "id", "missing_field")]
    rows = result.table.to_pylist()
    assert [r["title"] for r in rows if r["_source_id"] == "DUP"] == ["newer"]
    assert [r["_source_id"] for r in rows][:4] == ["C0", "C1", "DUP", "C3"]  # input order kept
    assert len({r["mobile_token"] for r in rows if r["mobile_token"]}) == 1  # same value, same token
    assert len({r["mobile_enc"] for r in rows if r["mobile_enc"]}) == n - 4  # never the same ciphertext
    for row in rows[:3]:
        assert row["_record_hash"] == ctx.cipher.record_hash(row["_raw"].encode())


def test_event_payloads_are_written_once_and_match_json_dumps(ctx):
    payloads = [{"page": "p", "mobile": "13812345678"}, {"b": 1, "a": "x"}, {"mobile": "bad"}, {}]
    records = [{"event_id": f"e{i}", "tenant_id": "t001", "org_id": "hx_sh", "occurred_at": "2026-11-25T10:00:00Z",
                "source": "web", "type": "web.view.page", "payload": p} for i, p in enumerate(payloads)]
    rows = process(EVENTS, records, ["x"] * 4, ctx).table.to_pylist()
    token = ctx.cipher.token("phone", "+8613812345678")
    expected = [{"page": "p", "mobile": f"tok:{token}"}, {"b": 1, "a": "x"},
                {"mobile": "inv:" + ctx.cipher.token("phone_raw", "bad")[:32]}, {}]
    assert [r["payload"] for r in rows] == [_json_compact(p) for p in expected]
    for row, record, payload in zip(rows, records, expected):
        assert row["_raw"] == _json_compact({**record, "payload": payload})


# --- reading files ----------------------------------------------------------------------------------

JSON_LINES = ['{"a": 1}', "", "   ", "{bad", '{"a": NaN}', '{"big": 123456789012345678901234567890}',
              '{"d": "\\ud800"}', "[1, 2]", "\u3000", '"text"', '{"e": 1, "e": 2}', '\ufeff{"bom": 1}',
              '{"f": 1.0000000000000002, "g": -0.0, "h": 1E5, "i": 18446744073709551615}', '{"deep": [[[]]]}']


def _loads(line: str) -> object:
    """How chunk_parts parses a line: orjson on its bytes where it can, json.loads on its text else."""
    record = files._fast_loads(line.encode())
    return json.loads(line) if record is files._MISSING else record


@pytest.mark.parametrize("line", JSON_LINES)
def test_fast_json_parse_agrees_with_json_loads(line):
    expected, got = outcome(json.loads, line), outcome(_loads, line)
    assert repr(got) == repr(expected)


def _dropped(tmp_path, name: str, data: bytes) -> files.DroppedFile:
    path = tmp_path / name
    path.write_bytes(data)
    return files.parse_file_name(path)


def _plain_jsonl(path) -> list[tuple]:
    out = []
    with path.open(encoding="utf-8") as handle:  # what the loader read before: text mode, line by line
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            try:
                out.append((f"{path.name}:{index + 1}", {**json.loads(line), "_file": path.name}, None))
            except ValueError as exc:
                out.append((f"{path.name}:{index + 1}", line.rstrip("\n"), f"line is not valid JSON: {exc.msg}"))
    return out


@pytest.mark.parametrize("size, skip", [(1, 0), (2, 1), (3, 4), (50_000, 0)])
def test_jsonl_chunks_read_as_text_mode_reads(tmp_path, size, skip):
    text = '{"a": 1}\n\n  \n{bad\r\n{"b": 2}\r{"c": 3}\n\u3000\n{"d": 4}'
    dropped = _dropped(tmp_path, "events_2026-11-25.jsonl", text.encode())
    chunks = list(files.read_chunks(dropped, size, skip=skip))
    got = [(r.ref, r.record, r.parse_error) for c in chunks for r in files.chunk_records(c)]
    assert got == _plain_jsonl(dropped.path)[skip:]
    assert [c.size for c in chunks[:-1]] == [size] * (len(chunks) - 1)


@pytest.mark.parametrize("size, skip", [(1, 0), (2, 1), (50_000, 3)])
def test_csv_chunks_read_as_dict_reader_reads(tmp_path, size, skip):
    text = 'record_id,name,mobile\r\nr1,"multi\nline",138\r\n\r\n\r\nr2,x\r\nr3,a,b,c,d\r\n"r4",y,"z""q"\r\n,,\r\n'
    dropped = _dropped(tmp_path, "contacts_2026-11-25.csv", b"\xef\xbb\xbf" + text.encode())
    with dropped.path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        expected = [(f"{dropped.name}:{reader.line_num}", {**row, "_file": dropped.name}) for row in reader]
    got = [(r.ref, r.record) for c in files.read_chunks(dropped, size, skip=skip) for r in files.chunk_records(c)]
    assert got == expected[skip:]


def test_parquet_chunks_hold_exactly_their_size(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "contacts_2026-11-25.parquet"
    pq.write_table(pa.table({"record_id": [f"r{i}" for i in range(25)]}), path, row_group_size=4)
    chunks = list(files.read_chunks(files.parse_file_name(path), 7, skip=2))
    assert [c.size for c in chunks] == [7, 7, 7, 2]
    records = [r for c in chunks for r in files.chunk_records(c)]
    assert [(r.ref, r.record["record_id"]) for r in records] == [
        (f"{path.name}:row {i + 1}", f"r{i}") for i in range(2, 25)]


def test_floats_keep_their_exact_value_through_the_fast_parse():
    for text in ("0.1", "1e-320", "2.2250738585072014e-308", "1.7976931348623157e308", "123.456e-7"):
        assert _loads(f'{{"x": {text}}}')["x"] == json.loads(text)
    assert math.isnan(_loads('{"x": NaN}')["x"])
    assert isinstance(_loads('{"x": 12345678901234567890123}')["x"], int)


def test_plain_csv_module_line_numbers_for_reference():
    # csv.DictReader gives a record the line it ends on, after skipping blank rows.
    reader = csv.DictReader(io.StringIO("a\n\n\nx\n"))
    assert [(reader.line_num, row) for row in reader] == [(4, {"a": "x"})]


# CSV text where a line without quotes is split at its commas outside csv, and a line with quotes is
# read by csv: every kind of line, in many orders, must read as csv.DictReader reads the file.
CSV_LINES = ["r1,a,b\n", "r2,x\r\n", "r3\r", "\n", "\r\n", "\r", "   \n", "r4,,,,\n", ",,\n", 'r5,"q,uoted",z\n',
             'r6,"multi\nline\r\nrecord",z\n', 'r7,stray"quote,z\n', 'r8,"say ""hi""",z\r\n', "r9,nul\x00byte\n",
             "r10,中文,\u3000\n", 'r11,"end"tail,z\n', '"r12",b\n', "r13,\u2028sep\x85,\x0c\n", 'r14,a\\"b,c\n']


def _dict_reader(path) -> list[tuple]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return [(f"{path.name}:{reader.line_num}", {**row, "_file": path.name}) for row in reader]


@pytest.mark.parametrize("seed", range(40))
def test_csv_lines_split_outside_csv_read_as_dict_reader_reads(tmp_path, seed):
    import random

    rng = random.Random(seed)
    body = "".join(rng.choice(CSV_LINES) for _ in range(rng.randint(1, 30)))
    if seed % 5 == 0:
        body += 'r99,"never closed\nlast line'  # a quote open at the end of the file
    elif seed % 5 == 1:
        body = body.rstrip("\r\n") + "\r"  # the last line ends in a bare CR
    header = rng.choice(["record_id,name,mobile\n", '"record_id","name",mobile\r\n', "record_id\n"])
    dropped = _dropped(tmp_path, "contacts_2026-11-25.csv", (b"\xef\xbb\xbf" if seed % 2 else b"") +
                       (header + body).encode())
    expected = _dict_reader(dropped.path)
    for size, skip in [(1, 0), (3, 2), (50_000, 0)]:
        chunks = list(files.read_chunks(dropped, size, skip=skip))
        got = [(r.ref, r.record) for c in chunks for r in files.chunk_records(c)]
        assert got == expected[skip:]
        assert sum(c.size for c in chunks) == len(expected[skip:])


def test_csv_lines_with_quotes_go_through_csv_and_the_rest_as_text(tmp_path):
    dropped = _dropped(tmp_path, "contacts_2026-11-25.csv", b'record_id,name\nr1,a\n"r2","b\nc"\nr3,d\n')
    [chunk] = files.read_chunks(dropped, 10)
    header, numbers, rows = chunk.data
    assert header == ["record_id", "name"] and numbers == [2, 4, 5]
    assert rows == ["r1,a\n", ["r2", "b\nc"], "r3,d\n"]


def test_chunk_parts_refs_are_made_on_demand(tmp_path):
    dropped = _dropped(tmp_path, "events_2026-11-25.jsonl", b'{"a": 1}\n\n{bad\n{"b": 2}\n')
    [chunk] = files.read_chunks(dropped, 10)
    records, refs, failed, _ = files.chunk_parts(chunk)
    name = dropped.name
    assert records == [{"a": 1, "_file": name}, {"b": 2, "_file": name}]
    assert len(refs) == 2 and refs[0] == f"{name}:1" and refs[-1] == f"{name}:4" and refs[0:2] == [f"{name}:1", f"{name}:4"]
    assert [(r.ref, r.record) for r in failed] == [(f"{name}:3", "{bad")]


@pytest.mark.parametrize("raw", [b'{"a": "\xff"}\n', b'{"a": "\xed\xa0\x80"}\n', b'\xc3\n'])
def test_jsonl_lines_that_are_not_utf8_fail_as_text_mode_reading_fails(tmp_path, raw):
    dropped = _dropped(tmp_path, "events_2026-11-25.jsonl", b'{"ok": 1}\n' + raw)
    with pytest.raises(UnicodeDecodeError):
        dropped.path.read_text(encoding="utf-8")
    with pytest.raises(UnicodeDecodeError):
        [files.chunk_records(c) for c in files.read_chunks(dropped, 10)]


@pytest.mark.parametrize("line", JSON_LINES)
def test_jsonl_bytes_parse_agrees_with_json_loads(tmp_path, line):
    dropped = _dropped(tmp_path, "events_2026-11-25.jsonl", line.encode() + b"\n")
    got = [(r.ref, r.record, r.parse_error) for c in files.read_chunks(dropped, 10) for r in files.chunk_records(c)]
    if not line.strip():
        assert got == []
        return
    name = dropped.name
    try:
        record = json.loads(line + "\n")
        expected = (f"{name}:1", {**record, "_file": name} if isinstance(record, dict) else record, None)
    except ValueError as exc:
        expected = (f"{name}:1", line, f"line is not valid JSON: {exc.msg}")
    assert repr(got) == repr([expected])


@pytest.mark.parametrize("landing_rows", [0, 1, 2])
def test_blocks_with_dead_rows_keep_the_landing_rows_columns_aligned(ctx, landing_rows):
    records = [{"id": None, "mobile": "13812345678", "updated_at": "2026-11-25T10:00:00+08:00"}] * 3
    records += [{"id": f"C{i}", "mobile": f"1391234567{i}", "title": f"t{i}", "updated_at": f"2026-11-25T1{i}:00:00+08:00"}
                for i in range(landing_rows)]
    result = process(CRM_CONTACTS, records, [f"r{i}" for i in range(len(records))], ctx)
    assert [d.record_ref for d in result.dead] == ["r0", "r1", "r2"]
    rows = result.table.to_pylist()
    assert [(r["_source_id"], r["title"], r["mobile_token"]) for r in rows] == [
        (f"C{i}", f"t{i}", ctx.cipher.token("phone", f"+861391234567{i}")) for i in range(landing_rows)]
    assert [r["updated_at"] for r in rows] == [datetime(2026, 11, 25, 2 + i, tzinfo=timezone.utc) for i in range(landing_rows)]


def test_jsonl_lines_with_lone_surrogates_are_dead_letters_and_the_rest_of_the_part_lands(tmp_path, ctx):
    """json.loads reads a "\\ud800" escape into text that is no Unicode character: such a record cannot
    land (no text column or cipher takes it), and used to fail its whole part."""
    def event(i: int, **extra) -> str:
        record = {"event_id": f"e{i}", "tenant_id": "t001", "org_id": "hx_sh", "occurred_at": "2026-11-25T10:00:00Z",
                  "source": "web", "type": "web.view.page", "payload": {"n": i}, **extra}
        return json.dumps(record) + "\n"  # ensure_ascii: the surrogate stays an escape in the file

    text = event(1) + event(2, ua="x\udc00y") + event(3, payload={"d": "\ud800"}) + event(4, payload={"n": float("nan")})
    dropped = _dropped(tmp_path, "events_2026-11-25.jsonl", text.encode())
    [chunk] = files.read_chunks(dropped, 100)
    landed, _, _ = parts.land_part(EVENTS, chunk, ctx)
    result = landing.merge(EVENTS, [landed], ctx)
    assert result.table.column("event_id").to_pylist() == ["e1", "e4"]
    assert result.table.column("payload")[1].as_py() == '{"n":NaN}'  # kept as json writes it, not as null
    assert [(d.record_ref, d.field, d.error_type, d.reason) for d in result.dead] == [
        (f"{dropped.name}:{line}", field, "invalid_value", f"field {field!r}: text holds a lone surrogate "
                                                           f"(U+{code}), which is not a Unicode character")
        for line, field, code in ((2, "ua", "DC00"), (3, "payload.d", "D800"))]


def test_parts_say_whether_their_records_can_hold_nan(tmp_path):
    plain = _dropped(tmp_path, "events_2026-11-25.jsonl", b'{"a": 1.5}\n{"b": [1e300]}\n')
    odd = _dropped(tmp_path, "events_2026-11-26.jsonl", b'{"a": 1.5}\n{"b": NaN}\n')
    csv_file = _dropped(tmp_path, "contacts_2026-11-25.csv", b"record_id,name\nr1,NaN\n")
    assert [files.chunk_parts(c)[3] for d in (plain, odd, csv_file) for c in files.read_chunks(d, 10)] == \
        [True, False, True]


def test_api_records_with_lone_surrogates_are_dead_letters_and_the_rest_of_the_page_lands(tmp_path, ctx):
    """An API page parsed by json may hold "\\ud800" escapes; the record holding one cannot land (no text
    column or cipher takes it), and used to fail its whole page. Its dead letter is stored and replays."""
    import duckdb

    from assets.ingestion import store
    from resources.warehouse import WarehouseSession

    records = [{"id": "C1", "name": "王\ud800", "updated_at": "2026-11-25T10:00:00Z"},
               {"id": "C2", "name": "ok", "updated_at": "2026-11-25T10:00:00Z"},
               {"id": "C3", "mobile": "138\udc00", "updated_at": "2026-11-25T10:00:00Z"},
               {"id": "C4", "extra": {"tags": ["a", "v\ud801"]}, "updated_at": "2026-11-25T10:00:00Z"},
               {"id": "C5", "name": json.loads('"\\ud83d\\ude00"'), "updated_at": "2026-11-25T10:00:00Z"}]  # a pair: 😀
    result = process(CRM_CONTACTS, records, [f"id={r['id']}" for r in records], ctx)
    assert result.table.column("_source_id").to_pylist() == ["C2", "C5"]
    assert [(d.record_ref, d.field, d.error_type, d.reason) for d in result.dead] == [
        ("id=C1", "name", "invalid_value", "field 'name': text holds a lone surrogate (U+D800), which is not a "
                                           "Unicode character"),
        ("id=C3", "mobile", "invalid_value", "field 'mobile': text holds a lone surrogate (U+DC00), which is not "
                                             "a Unicode character"),
        ("id=C4", "extra.tags[1]", "invalid_value", "field 'extra.tags[1]': text holds a lone surrogate (U+D801), "
                                                    "which is not a Unicode character")]

    con = duckdb.connect(str(tmp_path / "t001.duckdb"))
    con.execute("create schema ods")
    session = WarehouseSession(type("T", (), {"id": "t001", "org_ids": frozenset({"hx_sh"}),
                                              "timezone": "Asia/Shanghai"})(), con)
    batch = store.start_batch(session, CRM_CONTACTS, date(2026, 11, 25), kind="pull", replace_partition=True)
    store.write_page(session, batch, result, ctx.cipher, next_cursor=None)
    [(payload_enc,)] = con.execute(f"select payload_enc from {store.DEAD_LETTERS} where record_ref = 'id=C1'").fetchall()
    assert json.loads(ctx.cipher.decrypt(store.DEAD_LETTER_AAD, payload_enc))["name"] == "王\ud800"  # kept as received
