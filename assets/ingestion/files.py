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
from typing import Iterator

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


def read_records(dropped: DroppedFile) -> Iterator[FileRecord]:
    """Every record of the file in order (blank JSONL lines are not records)."""
    name = dropped.name
    required = [f.name for f in dropped.spec.fields if f.required]
    if dropped.fmt == "csv":
        with dropped.path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise UnreadableFile(f"{name}: header lacks required column(s) {', '.join(missing)}")
            for row in reader:
                yield FileRecord(f"{name}:{reader.line_num}", {**row, "_file": name})
    elif dropped.fmt == "jsonl":
        with dropped.path.open(encoding="utf-8") as handle:
            for index, line in enumerate(handle):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    yield FileRecord(f"{name}:{index + 1}", line.rstrip("\n"), f"line is not valid JSON: {exc.msg}")
                    continue
                if isinstance(record, dict):
                    record["_file"] = name
                yield FileRecord(f"{name}:{index + 1}", record)
    else:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(dropped.path)
        except Exception as exc:
            raise UnreadableFile(f"{name}: not a readable Parquet file ({exc})") from None
        missing = [c for c in required if c not in parquet.schema_arrow.names]
        if missing:
            raise UnreadableFile(f"{name}: schema lacks required column(s) {', '.join(missing)}")
        index = 0
        for batch in parquet.iter_batches(batch_size=50_000):
            for row in batch.to_pylist():
                index += 1
                yield FileRecord(f"{name}:row {index}", {**row, "_file": name})
