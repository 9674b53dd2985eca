"""Reading dropped files (CSV, JSONL, Parquet) into records with line references.

A file is named `<entity>_<YYYY-MM-DD or YYYYMMDD>[_anything].<csv|jsonl|parquet>`; the entity
picks the ODS spec and the date is the business date it belongs to.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator, Sequence

import orjson
import pyarrow as pa

from assets.ingestion.specs import FILE_SPECS, EntitySpec

FILE_NAME = re.compile(r"^(?P<entity>[a-z]+)_(?P<date>\d{4}-?\d{2}-?\d{2})(?:_[^.]*)?\.(?P<ext>csv|jsonl|parquet)$")


class UnreadableFile(ValueError):
    """The file as a whole cannot be read (not the format its name says, missing header columns)."""


@dataclass(frozen=True)
class DroppedFile:
    path: Path
    spec: EntitySpec
    business_date: date
    fmt: str

    @property
    def name(self) -> str:
        return self.path.name


def parse_file_name(path: Path) -> DroppedFile | None:
    match = FILE_NAME.match(path.name)
    if not match or match["entity"] not in FILE_SPECS:
        return None
    try:
        day = date.fromisoformat(match["date"]) if "-" in match["date"] else \
            date(int(match["date"][:4]), int(match["date"][4:6]), int(match["date"][6:]))
    except ValueError:
        return None
    return DroppedFile(path, FILE_SPECS[match["entity"]], day, match["ext"])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class FileRecord:
    ref: str             # file:line (CSV/JSONL) or file:row (Parquet)
    record: object       # a dict, or the raw text of a line that is not JSON
    parse_error: str | None = None


@dataclass
class Chunk:
    """Consecutive records of a file as read, parsed by chunk_records where they are landed (in a
    worker process for large files), so the reading process only splits the file."""
    name: str
    fmt: str
    size: int            # records in the chunk: what a resumed load skips
    first: int           # jsonl: index of its first line; parquet: of its first row
    data: object         # jsonl: the lines as bytes (blank ones too); csv: (header, line numbers, rows),
                         # a row being its line as text or, for lines with quotes, the list csv read;
                         # parquet: a pyarrow Table
    ends_chunk: bool = True  # read in parts (read_chunks' `part`): the last part of its chunk


def read_records(dropped: DroppedFile) -> Iterator[FileRecord]:
    """Every record of the file in order (blank JSONL lines are not records)."""
    for chunk in read_chunks(dropped, 50_000):
        yield from chunk_records(chunk)


def read_chunks(dropped: DroppedFile, size: int, *, skip: int = 0, part: int | None = None) -> Iterator[Chunk]:
    """The file's records after the first `skip`, in chunks of `size` records (the last may be smaller).
    With `part`, each chunk comes in parts of at most `part` records, its last part marked ends_chunk:
    parts can land apart and be merged into their chunk (landing.merge)."""
    name = dropped.name
    required = [f.name for f in dropped.spec.fields if f.required]
    part = size if part is None else max(1, min(part, size))
    if dropped.fmt == "csv":
        yield from _last_ends_its_chunk(_csv_chunks(dropped.path, name, required, size, skip, part))
    elif dropped.fmt == "jsonl":
        yield from _last_ends_its_chunk(_jsonl_chunks(dropped.path, name, size, skip, part))
    else:
        for chunk in _parquet_chunks(dropped.path, name, required, size, skip):
            table = chunk.data
            for start in range(0, chunk.size, part):
                piece = min(part, chunk.size - start)
                yield Chunk(name, "parquet", piece, chunk.first + start, table.slice(start, piece),
                            ends_chunk=start + piece == chunk.size)


def _last_ends_its_chunk(parts: Iterator[Chunk]) -> Iterator[Chunk]:
    """The parts, the file's last one marked as the end of its chunk (a reader finds the end of the
    file only after it has handed out a full part)."""
    held = None
    for part in parts:
        if held is not None:
            yield held
        held = part
    if held is not None:
        held.ends_chunk = True
        yield held


def chunk_records(chunk: Chunk) -> list[FileRecord]:
    """The chunk's records, as csv.DictReader and json.loads (or, below, pyarrow) read them."""
    records, refs, rejected, _ = chunk_parts(chunk)
    found = [FileRecord(ref, record) for ref, record in zip(refs, records)] + rejected
    if rejected and chunk.fmt == "jsonl":  # in file order
        found.sort(key=lambda r: _line_of(r.ref))
    return found


def _line_of(ref: str) -> int:
    return int(ref.rpartition(":")[2])


class Refs(Sequence[str]):
    """References of a chunk's records ("<file>:<line>"), made when one is asked for (a dead letter)."""

    def __init__(self, prefix: str, numbers: list[int]):
        self.prefix, self.numbers = prefix, numbers

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [f"{self.prefix}{n}" for n in self.numbers[i]]
        return f"{self.prefix}{self.numbers[i]}"


def chunk_parts(chunk: Chunk) -> tuple[list, Refs, list[FileRecord], bool]:
    """(the chunk's records that parsed, their references, the records that did not parse, whether
    the records are known to hold no NaN, Infinity or lone surrogate): what chunk_records returns,
    without an object per record. CSV holds text only, and orjson refuses all three; json.loads, which
    reads what orjson leaves to it, accepts them (landing checks such records)."""
    name = chunk.name
    if chunk.fmt == "csv":
        header, line_numbers, rows = chunk.data
        records = [csv_record(header, csv_cells(row), name) for row in rows]
        return records, Refs(f"{name}:", line_numbers), [], True
    if chunk.fmt == "jsonl":
        records, numbers, rejected = [], [], []
        strict = True
        for index, raw in enumerate(chunk.data, chunk.first + 1):
            record = _fast_loads(raw)
            if record is _MISSING:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    rejected.append(FileRecord(f"{name}:{index}", line.rstrip("\n"),
                                               f"line is not valid JSON: {exc.msg}"))
                    continue
                strict = False
            if record.__class__ is dict:
                record["_file"] = name
            records.append(record)
            numbers.append(index)
        return records, Refs(f"{name}:", numbers), rejected, strict
    rows = [{**row, "_file": name} for row in chunk.data.to_pylist()]
    return rows, Refs(f"{name}:row ", list(range(chunk.first + 1, chunk.first + 1 + len(rows)))), [], False


def csv_cells(row: str | list[str]) -> list[str]:
    """A CSV row's cells: a line without quotes split at its commas, as csv splits it."""
    return row.rstrip("\r\n").split(",") if row.__class__ is str else row


def csv_record(header: list[str], cells: list[str], name: str) -> dict:
    """The record csv.DictReader makes of a row, with the file's name."""
    record = dict(zip(header, cells))
    width = len(header)
    if width != len(cells):
        if width < len(cells):
            record[None] = cells[width:]  # csv.DictReader's restkey
        else:
            for key in header[len(cells):]:
                record[key] = None      # and its restval
    record["_file"] = name
    return record


_MISSING = object()


_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_LONG_NUMBER = b"0" * 19


def _fast_loads(raw: bytes) -> object:
    """What json.loads makes of the UTF-8 line raw, or _MISSING where orjson leaves it to json.loads.
    orjson parses JSON to the same objects several times faster, except that it turns integers beyond
    64 bits into floats: a line with 19 digits in a row goes to json.loads, and so does whatever orjson
    refuses (invalid lines and UTF-8, NaN and Infinity, which json accepts), so results and error
    messages stay json's. orjson reads UTF-8 strictly, so a line it parses is valid and not blank."""
    if _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except ValueError:
            pass
    return _MISSING


def _csv_chunks(path: Path, name: str, required: list[str], size: int, skip: int, part: int) -> Iterator[Chunk]:
    # Records as csv.reader reads them, with csv.DictReader's line numbers (where a record ends). A line
    # without a quote is a record of its own, which csv splits at its commas: it goes to chunk_records
    # as text, so this process only finds where records end. A line with a quote (a record may go on
    # over several lines) is read by csv here.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        line_num = 0
        pushed: list[str] = []

        def lines() -> Iterator[str]:
            nonlocal line_num
            while True:
                if pushed:
                    line = pushed.pop()
                else:
                    line = handle.readline()
                    if not line:
                        return
                line_num += 1
                yield line

        source = lines()
        reader = csv.reader(source)
        header = next(reader, None)
        missing = [c for c in required if c not in (header or [])]
        if missing:
            raise UnreadableFile(f"{name}: header lacks required column(s) {', '.join(missing)}")
        line_numbers: list[int] = []
        rows: list = []
        seen = in_chunk = 0
        for line in handle:
            if '"' in line:
                pushed.append(line)
                row = next(reader)
            else:
                line_num += 1
                row = line
                if line in _BLANK_LINES:  # csv reads []: csv.DictReader skips blank rows
                    continue
            seen += 1
            if seen <= skip:
                continue
            line_numbers.append(line_num)
            rows.append(row)
            in_chunk += 1
            if len(rows) == part or in_chunk == size:
                yield Chunk(name, "csv", len(rows), 0, (header, line_numbers, rows), ends_chunk=in_chunk == size)
                line_numbers, rows = [], []
                if in_chunk == size:
                    in_chunk = 0
        if rows:
            yield Chunk(name, "csv", len(rows), 0, (header, line_numbers, rows))


_BLANK_LINES = frozenset({"\n", "\r\n", "\r"})


def _jsonl_chunks(path: Path, name: str, size: int, skip: int, part: int) -> Iterator[Chunk]:
    # Split as text mode would: lines end at \n, \r\n or \r (bytes never found inside a UTF-8
    # sequence), and a line of white space is no record. A chunk holds its records' lines and the
    # blank lines before each; lines are decoded and parsed where the chunk is landed.
    with path.open("rb") as handle:
        lines: list[bytes] = []
        first = records = in_part = in_chunk = 0
        index = -1
        for raw in handle:
            for line in _text_lines(raw) if b"\r" in raw else (raw,):
                index += 1
                blank = line[:1] != b"{" and _blank(line)  # a record line starts with "{" as a rule
                if not blank:
                    records += 1
                if records <= skip:
                    continue
                if not lines:
                    first = index
                lines.append(line)
                if not blank:
                    in_part += 1
                    in_chunk += 1
                    if in_part == part or in_chunk == size:
                        yield Chunk(name, "jsonl", in_part, first, lines, ends_chunk=in_chunk == size)
                        lines, in_part = [], 0
                        if in_chunk == size:
                            in_chunk = 0
        if in_part:
            yield Chunk(name, "jsonl", in_part, first, lines)


def _text_lines(raw: bytes) -> list[bytes]:
    text = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    lines = text.split(b"\n")
    return [line + b"\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def _blank(line: bytes) -> bool:
    stripped = line.strip()
    if not stripped:
        return True
    if stripped[:1] in (b"{", b"["):
        return False
    return not line.decode("utf-8").strip()  # Unicode white space (U+3000...) counts too


def _parquet_chunks(path: Path, name: str, required: list[str], size: int, skip: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise UnreadableFile(f"{name}: not a readable Parquet file ({exc})") from None
    missing = [c for c in required if c not in parquet.schema_arrow.names]
    if missing:
        raise UnreadableFile(f"{name}: schema lacks required column(s) {', '.join(missing)}")
    pending: pa.Table | None = None
    start = seen = 0  # start: the row index of pending's first row
    for batch in parquet.iter_batches(batch_size=size):
        table = pa.Table.from_batches([batch])
        seen += table.num_rows
        if seen <= skip:
            continue
        if pending is None:
            start = max(skip, seen - table.num_rows)
            pending = table.slice(table.num_rows - (seen - start))
        else:
            pending = pa.concat_tables([pending, table])
        while pending.num_rows >= size:
            yield Chunk(name, "parquet", size, start, pending.slice(0, size))
            pending, start = pending.slice(size), start + size
    if pending is not None and pending.num_rows:
        yield Chunk(name, "parquet", pending.num_rows, start, pending)
