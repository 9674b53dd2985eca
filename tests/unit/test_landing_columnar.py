"""A CSV or Parquet part or an API page landed column by column (parts.land_part, parts.land_page) must give
exactly what landing its records one by one gives: the same rows in the same order, `_raw`, tokens,
hashes, flags and typed values, the same dead letters and counts. Only ciphertexts differ, by nonce
(compared by their plaintexts). Files are written by csv.writer and pages made from values chosen to
reach every branch: quoted cells, escapes, line breaks in cells, rows with too few or too many cells,
messy and invalid personal data, timestamps that look common but are not dates, values of other JSON
types, records with other keys, repeated ids and refs."""
import csv
import io
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assets.ingestion import files, landing, parts
from assets.ingestion.landing import merge, process
from assets.ingestion.specs import CRM_CALLS, CRM_CONTACTS, CRM_LEADS, FILE_CONTACTS

from tests.unit.test_landing_parts import EMAILS, MOBILES, STAMPS, TEXTS, _comparable, ctx  # noqa: F401

COMMON_MOBILES = ["13812345678", "19900001111", "12812345678", "1381234567", "138123456789"]
COMMON_EMAILS = ["ok@example.com", "Zhang.Wei@Example.COM", "a.b-c+d@mail.example.cn", ".a@b.com", "a.@b.com",
                 "a@b..com", "a@b.c", "ＡＢ@example.com", "a@例子.com", "a b@example.com", "x@y.z1"]
COMMON_STAMPS = ["2026-11-25T10:00:00+08:00", "2026-11-25T10:00:00.123Z", "2026-11-25T10:00:00.123456-03:30",
                 "2026-02-30T10:00:00+08:00", "0999-01-01T00:00:00+00:00", "0000-01-01T00:00:00+00:00",
                 "2026-11-25T10:00:00+24:00", "2026-11-25T10:00:00.12+08:00", " 2026-11-25T10:00:00+08:00",
                 "2026-11-25T23:59:59Z"]
HEADERS = [
    ["record_id", "name", "mobile", "email", "company", "title", "city", "signed_up_at"],
    ["备注", "signed_up_at", "email", "record_id", "mobile", "name", "Zeta", "a\"b"],  # extra, odd, missing columns
    ["record_id", "mobile", "email", "signed_up_at", "password"],                    # C3: every row a dead letter
    ["record_id", "name", "name", "mobile"],                                          # a repeated column name
]


def _value(rng: random.Random, column: str, ids: list[str]) -> str:
    if column == "record_id":
        return rng.choice(ids) if rng.random() > 0.03 else ""
    if column == "mobile":
        return rng.choice(COMMON_MOBILES * 3 + MOBILES)
    if column == "email":
        return rng.choice(COMMON_EMAILS * 2 + EMAILS)
    if column == "signed_up_at":
        return rng.choice(COMMON_STAMPS * 2 + STAMPS)
    return rng.choice(TEXTS) if rng.random() < 0.3 else rng.choice(["王柳", "ent_0001", "总裁", "", "Acme Ltd", "C:\\dir"])


def _csv_file(rng: random.Random, header: list[str], n: int) -> bytes:
    ids = [f"c{i}" for i in range(max(1, n // rng.choice([1, 2, 4])))]  # repeats within and across parts
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"]))
    writer.writerow(header)
    for _ in range(n):
        row = [_value(rng, column, ids) for column in header]
        roll = rng.random()
        if roll < 0.03:
            row = row[:-1]                    # a cell short: csv.DictReader's restval
        elif roll < 0.05:
            row = row + ["extra"]             # a cell too many: a dead letter
        writer.writerow(row)
    return out.getvalue().encode()


def _record_path(chunk: files.Chunk, ctx) -> landing.Landed:
    records, refs, failed, strict = files.chunk_parts(chunk)
    return landing._land(FILE_CONTACTS, records, refs, ctx, strict=strict)


@pytest.mark.parametrize("seed", range(24))
def test_a_csv_part_landed_by_columns_equals_its_records_landed_one_by_one(ctx, tmp_path, seed):
    rng = random.Random(seed)
    header = HEADERS[seed % len(HEADERS)]
    path = tmp_path / "contacts_2026-11-25.csv"
    path.write_bytes(_csv_file(rng, header, rng.choice([1, 7, 60, 700, 2 * landing.BLOCK_ROWS + 5])))
    chunks = files.read_chunks(files.parse_file_name(path), 500, part=rng.choice([50, 170, 500]))
    # the C3 and repeated-name headers land record by record throughout
    _compare_both_ways(chunks, parts.land_csv_part, ctx, by_columns=seed % len(HEADERS) < 2)


def _compare_both_ways(chunks, land_by_columns, ctx, *, by_columns: bool) -> None:
    """Each chunk landed by columns (where that gives None: record by record) and record by record must be
    alike, part by part and merged."""
    columns, records = [], []
    for chunk in chunks:
        landed = land_by_columns(FILE_CONTACTS, chunk, ctx)
        assert (landed is not None) == by_columns
        columns.append(landed or _record_path(chunk, ctx))
        records.append(_record_path(chunk, ctx))
        _assert_alike(columns[-1:], records[-1:], ctx)
    _assert_alike(columns, records, ctx)


def _assert_alike(one: list, other: list, ctx) -> None:
    one, other = merge(FILE_CONTACTS, one, ctx), merge(FILE_CONTACTS, other, ctx)
    assert _comparable(one, ctx, FILE_CONTACTS) == _comparable(other, ctx, FILE_CONTACTS)
    assert one.table.schema == other.table.schema


def test_common_values_are_normalised_as_columns_and_the_rest_value_by_value(ctx, tmp_path):
    path = tmp_path / "contacts_2026-11-25.csv"
    path.write_text("record_id,mobile,email,signed_up_at\n"
                    "c1,13812345678,Zhang.Wei@Example.COM,2026-11-25T10:00:00+08:00\n"
                    "c2,+86 138 1234 5678,Zhang@例子.中国,2026-11-25 10:00:00\n"
                    "c3,12345,a@b,2026-11-25T10:00:00Z\n", encoding="utf-8")
    [chunk] = files.read_chunks(files.parse_file_name(path), 10)
    rows = parts.land_csv_part(FILE_CONTACTS, chunk, ctx).table.to_pylist()
    tokens = [ctx.cipher.token("phone", "+8613812345678")] * 2 + [None]
    assert [r["mobile_token"] for r in rows] == tokens
    assert [r["mobile_is_mobile"] for r in rows] == [True, True, None]
    assert [ctx.cipher.decrypt("email", r["email_enc"]) for r in rows] == ["zhang.wei@example.com",
                                                                            "zhang@xn--fsqu00a.xn--fiqs8s", "a@b"]
    assert [r["signed_up_at"].isoformat() for r in rows] == ["2026-11-25T02:00:00+00:00",  # the tenant's zone
                                                             "2026-11-25T02:00:00+00:00", "2026-11-25T10:00:00+00:00"]
    assert rows[2]["_dq_flags"] == ["mobile: not a valid phone number", "email: not an email address"]
    assert '"mobile":"tok:' in rows[0]["_raw"] and "13812345678" not in rows[0]["_raw"]


def test_a_row_needing_json_escapes_or_missing_its_id_takes_the_record_path(ctx, tmp_path):
    path = tmp_path / "contacts_2026-11-25.csv"
    path.write_text('record_id,name,mobile\nc1,"say ""hi""",13812345678\n,no id,13812345678\nc3,plain,\n',
                    encoding="utf-8")
    [chunk] = files.read_chunks(files.parse_file_name(path), 10)
    landed = parts.land_csv_part(FILE_CONTACTS, chunk, ctx)
    assert landed.source_ids == ["contacts_2026-11-25.csv:c1", "contacts_2026-11-25.csv:c3"]  # input order
    assert landed.table.column("_raw").to_pylist()[0].startswith('{"_file":"contacts_2026-11-25.csv","mobile":"tok:')
    assert '"name":"say \\"hi\\""' in landed.table.column("_raw").to_pylist()[0]
    [dead] = landed.dead
    assert (dead.record_ref, dead.field, dead.error_type) == ("contacts_2026-11-25.csv:3", "record_id", "missing_field")


def _api_value(rng: random.Random, field: str, ids: list[str], odd_values: float) -> object:
    odd = rng.random() < odd_values  # values of another JSON type: their page lands by the record path
    if field in ("id", "contact_id"):
        return rng.choice(ids) if not odd else rng.choice([None, "", 7])
    if field in ("mobile", "phone"):
        return rng.choice(COMMON_MOBILES * 3 + MOBILES + [None]) if not odd else 13812345678
    if field == "email":
        return rng.choice(COMMON_EMAILS * 2 + EMAILS + [None])
    if field == "id_number":
        return rng.choice([None, "11010519491231002X", "110105194912310021", "123"])
    if field.endswith("_at"):
        return rng.choice(COMMON_STAMPS * 2 + STAMPS + [None]) if not odd else 1764000000
    if field == "deleted":
        return rng.choice([True, False, None]) if not odd else rng.choice(["true", "no", 1])
    if field == "status":
        return rng.choice(["new", "contacted", "qualified", "bogus", "", None])
    if field == "direction":
        return rng.choice(["inbound", "outbound", "sideways"])
    if field == "duration_s":
        return rng.choice(["12", "x", None]) if not odd else 12
    if odd:
        return rng.choice([{"a": 1}, ["x"], 1.5, "\ud800"])
    return rng.choice(TEXTS + [None, "王柳", "Acme", "C:\\dir"])


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("spec", [CRM_CONTACTS, CRM_LEADS, CRM_CALLS], ids=["contacts", "leads", "calls"])
def test_an_api_page_landed_by_columns_equals_its_records_landed_one_by_one(ctx, spec, seed):
    rng = random.Random(seed)
    n = rng.choice([1, 7, 60, 700, 2 * landing.BLOCK_ROWS + 5])
    ids = [f"r{i}" for i in range(max(1, n // rng.choice([1, 2, 4])))]
    keys = [f.name for f in spec.fields]
    rng.shuffle(keys)
    odd_values = 0.02 if seed % 3 == 0 else 0.0
    records = [{key: _api_value(rng, key, ids, odd_values) for key in keys} for _ in range(n)]
    if seed % 5 == 1 and n > 1:
        records[rng.randrange(n)].pop(keys[0])            # a record without a key the others have
    elif seed % 5 == 2 and n > 1:
        records[rng.randrange(n)]["extra"] = "x"          # or with one more
    refs = [str(r.get("id")) for r in records]            # as the pulls make them: repeated with the id
    columns, _ = parts.land_page(spec, ([dict(r) for r in records], refs, None), ctx)
    one_by_one = process(spec, [dict(r) for r in records], refs, ctx)
    assert _comparable(columns, ctx, spec) == _comparable(one_by_one, ctx, spec)
    assert columns.table.schema == one_by_one.table.schema


def test_only_pages_of_records_with_the_same_keys_and_text_or_true_false_values_land_by_columns(ctx):
    records = [{"id": "r1", "mobile": "13812345678", "updated_at": "2026-11-25T10:00:00+08:00", "deleted": False},
               {"id": "r2", "mobile": None, "updated_at": "2026-11-25T10:00:00Z", "deleted": None}]
    assert parts.land_records(CRM_CONTACTS, records, ["r1", "r2"], ctx) is not None
    assert parts.land_records(CRM_CONTACTS, [{**records[0], "deleted": 0}], ["r1"], ctx) is None  # a number
    assert parts.land_records(CRM_CONTACTS, [records[0], {"id": "r3"}], ["r1", "r3"], ctx) is None  # other keys


@pytest.mark.parametrize("seed", range(16))
def test_a_parquet_part_landed_by_columns_equals_its_records_landed_one_by_one(ctx, tmp_path, seed):
    rng = random.Random(seed)
    header = HEADERS[seed % 2]  # both land by columns
    n = rng.choice([1, 7, 60, 700])
    ids = [f"c{i}" for i in range(max(1, n // rng.choice([1, 2, 4])))]
    rows = [[None if rng.random() < 0.05 else _value(rng, column, ids) for column in header] for _ in range(n)]
    columns = {name: pa.array([row[j] for row in rows], pa.string()) for j, name in enumerate(header)}
    if seed % 4 == 3:
        columns["flag"] = pa.array([rng.choice([True, False, None]) for _ in range(n)], pa.bool_())
    elif seed % 4 == 2 and "name" in columns:  # true/false in a text field: the record path's text for them
        columns["name"] = pa.array([rng.choice([True, False, None]) for _ in range(n)], pa.bool_())
    path = tmp_path / "contacts_2026-11-25.parquet"
    pq.write_table(pa.table(columns), path)
    chunks = files.read_chunks(files.parse_file_name(path), 500, part=rng.choice([50, 170, 500]))
    _compare_both_ways(chunks, parts.land_parquet_part, ctx, by_columns=True)


def test_a_parquet_part_with_columns_of_other_types_lands_record_by_record(ctx, tmp_path):
    path = tmp_path / "contacts_2026-11-25.parquet"
    pq.write_table(pa.table({"record_id": ["c1"], "mobile": ["13812345678"], "age": pa.array([30], pa.int64())}), path)
    [chunk] = files.read_chunks(files.parse_file_name(path), 10)
    assert parts.land_parquet_part(FILE_CONTACTS, chunk, ctx) is None
    landed, _, _ = parts.land_part(FILE_CONTACTS, chunk, ctx)
    assert landed.table.column("_raw").to_pylist()[0].startswith('{"_file":"contacts_2026-11-25.parquet","age":30,')

    # true/false where personal data is expected: the record path makes it text ("True"), flagged invalid
    pq.write_table(pa.table({"record_id": ["c1"], "mobile": [True], "name": [False]}), path)
    [chunk] = files.read_chunks(files.parse_file_name(path), 10)
    assert parts.land_parquet_part(FILE_CONTACTS, chunk, ctx) is None
    landed, _, _ = parts.land_part(FILE_CONTACTS, chunk, ctx)
    assert landed.table.column("name").to_pylist() == ["False"]
    assert landed.table.column("_dq_flags").to_pylist() == [["mobile: not a phone number"]]
