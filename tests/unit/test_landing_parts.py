"""A file chunk read in parts, landed part by part (in worker processes, handed over in spool files) and
merged where it is written must give exactly what landing the whole chunk at once gives: the same rows,
`_raw`, tokens, hashes and flags, the same newest-version dedupe and duplicate count, the same dead
letters in the same order, the same ledger counts. Only ciphertexts differ, by nonce."""
import json
import random
from datetime import date, datetime, timezone

import pytest
from cryptography.exceptions import InvalidTag

from assets.ingestion import files, landing
from assets.ingestion.landing import LandingContext, merge, process
from assets.ingestion.parts import land_part
from assets.ingestion.specs import EVENTS, FILE_CONTACTS, PAYLOAD_PII
from fincdp.pii import LocalKeyFileProvider, TenantCipher


@pytest.fixture
def ctx(tmp_path):
    cipher = TenantCipher.for_tenant("t001", LocalKeyFileProvider(tmp_path / "keys"))
    return LandingContext("t001", frozenset({"hx_sh", "hx_bj"}), "Asia/Shanghai", cipher, date(2026, 11, 25), "b1",
                          datetime(2026, 11, 26, tzinfo=timezone.utc))


# Values chosen to reach every branch: unicode, quotes, escapes, separators, empty fields, odd numbers,
# invalid and unusual personal data, C3 field names.
TEXTS = ["", " ", "王柳", "Zoë", '引号"和\\反斜杠', "ctl\x01\t\x7f", "%s %d %%", "\u2028", "\u3000", "a,b", "null",
         "1e5", "-0", "18446744073709551616"]
MOBILES = ["13812345678", "+86 138 1234 5678", "１３８１２３４５６７８", "0086-13912345678", "010-62345678",
           "12345", "", "not a phone", "8613812345678"]
EMAILS = ["Zhang.Wei@Example.COM", "a@b", "用户@例子.中国", "x..y@example.com", "", "ok@example.com"]
STAMPS = ["2026-11-25T10:00:00+08:00", "2026-11-25 10:00:00", "2026-11-25", "yesterday", "", "2026-02-30T10:00:00",
          "1970-01-01T00:00:00Z"]
NUMBERS = [0, -7, 2**70, 1.5, 1e16, -0.0, True, None, "12", 3.0]


def _contact(rng: random.Random, ids: list[str]) -> dict:
    record = {"record_id": rng.choice(ids), "name": rng.choice(TEXTS), "mobile": rng.choice(MOBILES),
              "email": rng.choice(EMAILS), "company": rng.choice(TEXTS), "title": rng.choice(TEXTS),
              "city": rng.choice(TEXTS), "signed_up_at": rng.choice(STAMPS), "_file": "contacts_2026-11-25.csv"}
    roll = rng.random()
    if roll < 0.04:
        record["record_id"] = ""                      # missing id
    elif roll < 0.07:
        record["password"] = "secret"                 # C3
    elif roll < 0.09:
        record[None] = ["extra", "cells"]             # csv.DictReader's restkey
    return record


def _event(rng: random.Random, ids: list[str]) -> object:
    payload = {"n": rng.choice(NUMBERS), "text": rng.choice(TEXTS)}
    if rng.random() < 0.5:
        payload[rng.choice(["mobile", "phone"])] = rng.choice(MOBILES)
    if rng.random() < 0.3:
        payload["email"] = rng.choice(EMAILS)
    if rng.random() < 0.2:
        payload["id_number"] = rng.choice(["11010519491231002X", "110105194912310021", "123", ""])
    if rng.random() < 0.03:
        payload["cvv"] = "123"                        # C3 one level down
    record = {"event_id": rng.choice(ids), "tenant_id": rng.choice(["t001"] * 9 + ["t002"]),
              "org_id": rng.choice(["hx_sh", "hx_bj", "hx_xx"]), "one_id": rng.choice([None, "o1"]),
              "occurred_at": rng.choice(STAMPS), "source": rng.choice(["web", "app", ""]),
              "type": rng.choice(["web.view.page", "app.click.button", "Bad.Type"]),
              "ip": rng.choice(["10.1.2.3", "::1", "2001:db8::1", "01.2.3.4", "nope", ""]),
              "ua": rng.choice(TEXTS), "payload": rng.choice([payload] * 8 + ["{}", [1], None]),
              "_file": "events_2026-11-25.jsonl"}
    roll = rng.random()
    if roll < 0.02:
        return rng.choice([[1, 2], "text", 7])       # not an object
    if roll < 0.05:
        del record["occurred_at"]
    elif roll < 0.07:
        record["extra"] = {"nested": rng.choice(TEXTS)}
    return record


def _decrypt(ctx, columns: list[str], blob: bytes) -> tuple[str, str]:
    for column in columns:
        try:
            return column, ctx.cipher.decrypt(column, blob)
        except InvalidTag:
            continue
    raise AssertionError(f"ciphertext decrypts under none of {columns}")


def _comparable(processed, ctx, spec) -> tuple:
    """Everything of a landed batch, ciphertexts replaced by their plaintexts."""
    rows = []
    for row in processed.table.to_pylist():
        for name in [k for k in row if k.endswith("_enc")]:
            blob = row.pop(name)
            columns = [name[:-4]]
            if spec is EVENTS and name.startswith("payload_"):  # the AAD names the payload key it came from
                kind = name[len("payload_"):-len("_enc")]
                columns = [f"payload.{key}" for key, of in PAYLOAD_PII.items() if of == kind]
            row[name] = None if blob is None else _decrypt(ctx, columns, blob)
        rows.append(row)
    dead = [(d.record_ref, d.field, d.error_type, d.reason, json.dumps(d.payload, ensure_ascii=False, default=str))
            for d in processed.dead]
    return rows, dead, processed.received, processed.duplicates, processed.landed


def _split(rng: random.Random, n: int) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 6)))) if n > 1 else []
    bounds = [0, *cuts, n]
    return list(zip(bounds, bounds[1:]))


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("spec", [FILE_CONTACTS, EVENTS], ids=["contacts", "events"])
def test_parts_merged_equal_the_chunk_landed_whole(ctx, tmp_path, spec, seed):
    rng = random.Random(seed)
    n = rng.choice([1, 5, 40, 300, 2 * landing.BLOCK_ROWS + 3])
    ids = [f"id{i}" for i in range(max(1, n // rng.choice([1, 2, 5])))]  # repeats within and across parts
    make = _contact if spec is FILE_CONTACTS else _event
    records = [make(rng, ids) for _ in range(n)]
    refs = [f"f:{i + 1}" for i in range(n)]
    whole = process(spec, [dict(r) if isinstance(r, dict) else r for r in records], refs, ctx)

    spool = tmp_path / "spool"
    spool.mkdir()
    parts = []
    for a, b in _split(rng, n):
        part = landing._land(spec, [dict(r) if isinstance(r, dict) else r for r in records[a:b]], refs[a:b], ctx)
        if rng.random() < 0.5:
            part.spool(str(spool))  # as a worker process hands it over
        parts.append(part)
    merged = merge(spec, parts, ctx)
    assert _comparable(merged, ctx, spec) == _comparable(whole, ctx, spec)
    assert merged.table.schema == whole.table.schema
    assert list(spool.iterdir()) == []  # each spool file is removed once mapped


def test_a_spooled_part_survives_its_file_and_keeps_its_rows(ctx, tmp_path):
    records = [{"record_id": f"r{i}", "mobile": "13812345678", "_file": "f.csv"} for i in range(3)]
    part = landing._land(FILE_CONTACTS, records, ["a", "b", "c"], ctx)
    expected = part.table
    spool = tmp_path / "spool"
    spool.mkdir()
    part.spool(str(spool))
    assert part.table is None and len(list(spool.iterdir())) == 1
    assert part.loaded().equals(expected) and list(spool.iterdir()) == []
    assert part.loaded() is part.table  # loaded once


# --- reading in parts -------------------------------------------------------------------------------

def _dropped(tmp_path, name: str, data: bytes) -> files.DroppedFile:
    path = tmp_path / name
    path.write_bytes(data)
    return files.parse_file_name(path)


def _check_parts(dropped, size: int, part: int, skip: int) -> None:
    chunks = list(files.read_chunks(dropped, size, skip=skip))
    parts = list(files.read_chunks(dropped, size, skip=skip, part=part))
    # Grouped at ends_chunk, the parts hold the chunks' records, in order, with the same references.
    groups, current = [], []
    for p in parts:
        assert 0 < p.size <= part
        current.append(p)
        if p.ends_chunk:
            groups.append(current)
            current = []
    assert current == [] and len(groups) == len(chunks)
    for chunk, group in zip(chunks, groups):
        assert sum(p.size for p in group) == chunk.size
        got = [(r.ref, r.record, r.parse_error) for p in group for r in files.chunk_records(p)]
        assert got == [(r.ref, r.record, r.parse_error) for r in files.chunk_records(chunk)]


@pytest.mark.parametrize("size, part, skip", [(1, 1, 0), (5, 2, 0), (5, 2, 3), (6, 3, 1), (4, 10, 0), (50, 7, 2)])
def test_jsonl_parts_make_up_the_chunks(tmp_path, size, part, skip):
    lines = ['{"a": %d}' % i if i % 7 else "" for i in range(40)] + ["{bad", "  ", '{"z": "\u3000"}']
    dropped = _dropped(tmp_path, "events_2026-11-25.jsonl", "\r\n".join(lines).encode())
    _check_parts(dropped, size, part, skip)


@pytest.mark.parametrize("size, part, skip", [(1, 1, 0), (5, 2, 0), (5, 2, 3), (6, 3, 1), (4, 10, 0), (50, 7, 2)])
def test_csv_parts_make_up_the_chunks(tmp_path, size, part, skip):
    body = "".join(f"r{i},n{i}\n" if i % 5 else f'r{i},"multi\nline ""{i}"""\n' for i in range(33)) + "\n\nlast,x"
    dropped = _dropped(tmp_path, "contacts_2026-11-25.csv", ("record_id,name\n" + body).encode())
    _check_parts(dropped, size, part, skip)


@pytest.mark.parametrize("size, part, skip", [(7, 3, 2), (5, 5, 0), (25, 4, 0)])
def test_parquet_parts_make_up_the_chunks(tmp_path, size, part, skip):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "contacts_2026-11-25.parquet"
    pq.write_table(pa.table({"record_id": [f"r{i}" for i in range(23)]}), path, row_group_size=4)
    _check_parts(files.parse_file_name(path), size, part, skip)


def test_land_part_reports_its_size_and_chunk_end_and_spools_on_request(ctx, tmp_path):
    dropped = _dropped(tmp_path, "events_2026-11-25.jsonl",
                       b'{"event_id": "e1"}\n{bad\n{"event_id": "e2"}\n{"event_id": "e3"}\n')
    spool = tmp_path / "spool"
    spool.mkdir()
    [first, second] = files.read_chunks(dropped, 4, part=2)  # a line that is not JSON counts as a record
    landed, size, ends = land_part(EVENTS, first, ctx, spool=str(spool))
    assert (size, ends) == (2, False) and landed.table is None and len(list(spool.iterdir())) == 1
    assert [d.record_ref for d in landed.rejected] == ["events_2026-11-25.jsonl:2"]
    other, size, ends = land_part(EVENTS, second, ctx)
    assert (size, ends) == (2, True) and other.table is not None
    merged = merge(EVENTS, [landed, other], ctx)
    # Rejected lines come after the records that reached landing, as for a chunk landed whole.
    assert [d.record_ref for d in merged.dead][-1] == "events_2026-11-25.jsonl:2"
    assert merged.received == 4 and merged.landed + len(merged.dead) == 4


def test_a_csv_row_with_more_cells_than_its_header_is_a_dead_letter_not_a_failed_load(ctx, tmp_path):
    dropped = _dropped(tmp_path, "contacts_2026-11-25.csv",
                       "record_id,name\nr1,a\nr2,b,extra,cells\nr3,c\n".encode())
    [chunk] = files.read_chunks(dropped, 10)
    landed, _, _ = land_part(FILE_CONTACTS, chunk, ctx)
    result = merge(FILE_CONTACTS, [landed], ctx)
    assert result.table.column("record_id").to_pylist() == ["r1", "r3"]
    [dead] = result.dead
    assert (dead.record_ref, dead.error_type) == ("contacts_2026-11-25.csv:3", "schema")
    assert "more cells than its header" in dead.reason and dead.payload[None] == ["extra", "cells"]


def test_a_part_that_cannot_be_spooled_keeps_its_table(ctx, tmp_path):
    records = [{"record_id": f"r{i}", "_file": "f.csv"} for i in range(3)]
    part = landing._land(FILE_CONTACTS, records, ["a", "b", "c"], ctx)
    expected = part.table
    part.spool(str(tmp_path / "gone"))  # no such directory (a full /dev/shm fails the same way: OSError)
    assert part.spooled is None and part.loaded() is expected


def test_spool_directories_live_in_shared_memory_only_when_it_has_room(tmp_path, monkeypatch):
    import os
    import tempfile

    from assets.ingestion import ods

    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(ods, "SPOOL_ROOT", str(shm))
    monkeypatch.setattr(ods, "SPOOL_MIN_FREE", 0)
    roomy = ods._spool_dir()
    monkeypatch.setattr(ods, "SPOOL_MIN_FREE", 1 << 62)  # e.g. a container's 64 MB /dev/shm
    small = ods._spool_dir()
    try:
        assert os.path.dirname(roomy) == str(shm)
        assert os.path.dirname(small) == tempfile.gettempdir()
        assert os.path.basename(small).startswith(f"fincdp-landing-{os.getpid()}-")
    finally:
        os.rmdir(roomy)
        os.rmdir(small)
