"""Opening a replay file: CSV (any of CP949, UTF-8, UTF-8 with BOM) or Parquet, read in chunks.

Every CSV column is read as text: blanks, stray spaces and values such as "점검중" are then told
apart row by row (a blank is a missing value, anything else that is not a number is refused),
which pyarrow's type inference would turn into a failure of the whole file. Parquet keeps its
own types. Chunks keep the reading itself small (8 MiB of CSV at a time); what is read is then
kept in columns to be sorted by time (replay.py), about 30 bytes a value (docs/replay.md, Memory).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CSV_BLOCK_BYTES = 8 << 20  # pyarrow reads and parses this much at a time
PARQUET_BATCH_ROWS = 200_000
SNIFF_BYTES = 1 << 20


class FileFormatError(ValueError):
    """The file cannot be read at all (not CSV or Parquet, undecodable, no header)."""


@dataclass
class Opened:
    path: Path
    kind: str  # "csv" or "parquet"
    encoding: str | None  # CSV only: the encoding used
    header: list[str]
    chunks: Iterator[pa.RecordBatch]
    # CSV lines pyarrow could not split into the header's columns: (line number or None, text, why).
    ragged: list[tuple[int | None, str, str]] | None = None


def detect_encoding(path: Path) -> str:
    """"utf-8-sig" (a BOM), "utf-8" (the first MiB decodes as UTF-8) or "cp949" (Seoul's files,
    which are what does not decode as UTF-8; CP949 is a superset of EUC-KR)."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a cut multibyte at the end is fine
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("cp949")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: neither UTF-8 nor CP949 (byte {exc.start}: {head[exc.start:exc.start + 4]!r}); "
                              "convert it to UTF-8 or give --encoding") from None
    return "cp949"


def is_parquet(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PAR1"


def open_file(path: Path, *, encoding: str | None = None, block_bytes: int = CSV_BLOCK_BYTES) -> Opened:
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    if is_parquet(path):
        pf = pq.ParquetFile(path)
        header = list(pf.schema_arrow.names)
        return Opened(path, "parquet", None, header, pf.iter_batches(batch_size=PARQUET_BATCH_ROWS))
    enc = encoding or detect_encoding(path)
    header = _csv_header(path, enc)
    # The header is read here (names cleaned of a BOM and spaces) and skipped by pyarrow, so the
    # column names, and the all-text column types keyed by them, are exactly `header`.
    read = pacsv.ReadOptions(encoding="utf8" if enc in ("utf-8", "utf-8-sig") else enc, block_size=block_bytes,
                             column_names=header, skip_rows=1, use_threads=False)
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                   strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=True)
    ragged: list[tuple[int | None, str, str]] = []

    def keep_ragged(row: pacsv.InvalidRow) -> str:
        ragged.append((row.number, row.text, f"{row.actual_columns} fields where the header has {row.expected_columns}"))
        return "skip"  # kept above and quarantined by the replay, not lost

    parse = pacsv.ParseOptions(invalid_row_handler=keep_ragged)
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise FileFormatError(f"{path}: not a readable CSV file ({exc})") from None
    return Opened(path, "csv", enc, header, _csv_chunks(path, reader), ragged)


def _csv_header(path: Path, encoding: str) -> list[str]:
    with path.open("r", encoding=encoding, newline="") as f:
        import csv

        try:
            header = next(csv.reader(f))
        except StopIteration:
            raise FileFormatError(f"{path}: empty file") from None
        except UnicodeDecodeError as exc:
            raise FileFormatError(f"{path}: the header is not {encoding} ({exc})") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    if len(set(header)) != len(header):
        raise FileFormatError(f"{path}: the header names a column twice: {header}")
    return header


def _csv_chunks(path: Path, reader: pacsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            # A row with the wrong number of fields, or bytes the encoding cannot decode: pyarrow
            # cannot resynchronise inside a block, so the file is refused rather than half read.
            raise FileFormatError(f"{path}: {exc}") from None
        yield batch
