"""The shared Parquet store: the file contract between data preparation and every trial.

A store is a folder (a local path or any URI pyarrow's filesystems accept, e.g. ``file://``, ``s3://``):

    manifest.json                 schema_version, classes, vocab/embedding sizes, counts, source, params,
                                  embedding kinds and their files, hashes
    sequences.parquet             split (string), label (int32), token_ids (list<int32>, unpadded),
                                  length (int32)
    embeddings.parquet            the first (default) embedding kind: token (string),
                                  vector (fixed_size_list<float32>[embedding_dim]); row i = token id i
    embeddings-<kind>.parquet     every further kind, same schema and rows (e.g. embeddings-fasttext.parquet)

A store with one kind is exactly what stores were before kinds existed, and a manifest without
``embedding_kinds`` means one kind, ``word2vec``, in ``embeddings.parquet``.

    s = load("stores/imdb1k")                          # the default kind
    s = load("stores/imdb1k", embedding="fasttext")    # another kind; StoreError if the store lacks it
    s.embedding_kind, s.embedding_kinds                # "fasttext", ["word2vec", "fasttext", "random"]
    small = s.with_split_codes(codes)                  # the same store with other splits (-1: none)

``write_store`` builds it in a temporary folder beside the target and renames it into place, so a crash
never leaves a half-written store. ``load`` returns flat numpy arrays (no per-row Python) and checks
the content hash of what it reads; ``verify`` checks every file. No pickle anywhere.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.fs as pafs
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
PAD_ID, UNK_ID = 0, 1
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
SPLITS = ("train", "valid", "test")
DATA_FILES = ("sequences.parquet", "embeddings.parquet")  # the files every store has
DEFAULT_EMBEDDING_FILE = "embeddings.parquet"
LEGACY_EMBEDDING_KIND = "word2vec"  # what a manifest without "embedding_kinds" holds
# A kind names a file, so it is a plain lowercase word: no path separators, nothing to quote.
EMBEDDING_KIND = re.compile(r"[a-z0-9_]+")


class StoreError(Exception):
    """A store that is missing, malformed or does not match its manifest (message is one line)."""


@dataclass(frozen=True)
class Store:
    """A loaded store. Sequences are kept flat: example i is ``tokens[offsets[i]:offsets[i+1]]``."""

    uri: str
    manifest: dict
    labels: np.ndarray  # (N,) int64
    split_codes: np.ndarray  # (N,) int8, index into SPLITS; -1: in no split (see with_split_codes)
    lengths: np.ndarray  # (N,) int64
    offsets: np.ndarray  # (N+1,) int64
    tokens: np.ndarray  # (sum(lengths),) int32, never PAD_ID
    embeddings: np.ndarray | None  # (vocab_size, embedding_dim) float32
    embedding_kind: str | None = None  # the kind ``embeddings`` holds; None when loaded without them
    _split_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return int(self.manifest["num_classes"])

    @property
    def class_names(self) -> list[str]:
        return list(self.manifest["class_names"])

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["vocab_size"])

    @property
    def embedding_dim(self) -> int:
        return int(self.manifest["embedding_dim"])

    @property
    def content_hash(self) -> str:
        return str(self.manifest["content_hash"])

    @property
    def embedding_kinds(self) -> list[str]:
        """Every embedding kind the store holds, the default (first) one first."""
        return embedding_kinds(self.manifest)

    def indices(self, split: str) -> np.ndarray:
        """Row indices of one split, in store order."""
        if split not in SPLITS:
            raise StoreError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if split not in self._split_cache:
            self._split_cache[split] = np.flatnonzero(self.split_codes == SPLITS.index(split))
        return self._split_cache[split]

    def with_split_codes(self, codes: np.ndarray) -> Store:
        """A copy with other splits: ``codes`` (N,) holds an index into SPLITS per row, or -1 for a row
        that belongs to no split (e.g. a subsample). Data arrays are shared, not copied; ``manifest``
        still describes the store on disk (its counts are the original splits')."""
        codes = np.asarray(codes)
        if codes.shape != self.split_codes.shape:
            raise StoreError(f"split codes have shape {codes.shape}; this store has {len(self.split_codes)} rows")
        if not np.issubdtype(codes.dtype, np.integer):
            raise StoreError(f"split codes must be integers, got {codes.dtype}")
        if codes.size and (codes.min() < -1 or codes.max() >= len(SPLITS)):
            raise StoreError(f"split codes must lie in -1 .. {len(SPLITS) - 1} (-1: no split)")
        # A private copy: the caller may go on editing its array, which must not change this store's splits.
        return dataclasses.replace(self, split_codes=codes.astype(np.int8, copy=True), _split_cache={})


# ---------------------------------------------------------------------------------------------- writing

def _local_path(uri: str) -> Path:
    """Writing is local (or file://): a remote store is built locally and copied by the user's tooling."""
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" in uri:
        raise StoreError(f"cannot write a store to {uri!r}: build locally, then copy it to shared storage")
    return Path(uri)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def combined_hash(file_hashes: dict[str, str]) -> str:
    """One hash of all data files, order-independent of how they were listed."""
    return hashlib.sha256("".join(f"{k}:{file_hashes[k]};" for k in sorted(file_hashes)).encode()).hexdigest()


def sequences_table(token_ids: pa.ListArray | list, labels: np.ndarray, splits: np.ndarray) -> pa.Table:
    """Build the sequences table; ``splits`` holds split names, ``token_ids`` one int sequence per row."""
    ids = token_ids if isinstance(token_ids, pa.Array) else pa.array(token_ids, type=pa.list_(pa.int32()))
    ids = ids.cast(pa.list_(pa.int32()))
    return pa.table({
        "split": pa.array(np.asarray(splits, dtype=object), type=pa.string()),
        "label": pa.array(np.asarray(labels, dtype=np.int32)),
        "token_ids": ids,
        "length": pa.compute.list_value_length(ids).cast(pa.int32()),
    })


def embedding_file(kind: str, default_kind: str) -> str:
    """File name of one kind's table: the default kind keeps the name stores have always used."""
    return DEFAULT_EMBEDDING_FILE if kind == default_kind else f"embeddings-{kind}.parquet"


def embedding_kinds(manifest: dict) -> list[str]:
    """The kinds a store's manifest lists, the default first (stores from before kinds: word2vec)."""
    return list(manifest.get("embedding_kinds") or [LEGACY_EMBEDDING_KIND])


def embedding_files(manifest: dict) -> dict[str, str]:
    """Kind -> file name, the default kind first. (Order comes from the "embedding_kinds" list: the JSON
    object "embedding_files" is written with sorted keys.)"""
    kinds = embedding_kinds(manifest)
    listed = manifest.get("embedding_files") or {}
    return {kind: listed.get(kind) or embedding_file(kind, kinds[0]) for kind in kinds}


def embeddings_table(vocab: list[str], vectors: np.ndarray) -> pa.Table:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    flat = pa.array(vectors.reshape(-1))
    return pa.table({
        "token": pa.array(vocab, type=pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]),
    })


def write_store(out: str, *, sequences: pa.Table, vocab: list[str],
                vectors: np.ndarray | Mapping[str, np.ndarray], class_names: list[str], source: dict,
                params: dict, params_hash: str, extra: dict | None = None) -> dict:
    """Validate and write a store atomically at ``out``; returns the manifest.

    ``vectors`` is one (V, D) matrix (kind ``word2vec``) or a mapping kind -> matrix, the default kind
    first. The caller decides about reuse/overwrite (see ``existing_manifest``); an existing folder at
    ``out`` is replaced only after the new one is complete.
    """
    by_kind = dict(vectors) if isinstance(vectors, Mapping) else {LEGACY_EMBEDDING_KIND: vectors}
    _check_contract(sequences, vocab, by_kind, class_names)
    kinds = list(by_kind)
    files = {kind: embedding_file(kind, kinds[0]) for kind in kinds}
    dim = int(by_kind[kinds[0]].shape[1])
    target = _local_path(out).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        # mkdtemp makes the folder private (0700); a shared store must be readable like any new folder.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)
        pq.write_table(sequences, staging / "sequences.parquet", compression="zstd")
        for kind, name in files.items():
            pq.write_table(embeddings_table(vocab, by_kind[kind]), staging / name, compression="zstd")
        file_hashes = {name: _sha256(staging / name) for name in ("sequences.parquet", *files.values())}
        split_col = sequences.column("split").to_numpy(zero_copy_only=False)
        label_col = sequences.column("label").to_numpy()
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "num_classes": len(class_names),
            "class_names": list(class_names),
            "vocab_size": len(vocab),
            "embedding_dim": dim,
            "embedding_kinds": kinds,
            "embedding_files": files,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "counts": {s: int((split_col == s).sum()) for s in SPLITS},
            "class_counts": {s: [int(((split_col == s) & (label_col == c)).sum()) for c in range(len(class_names))]
                             for s in SPLITS},
            "max_length": int(pa.compute.max(sequences.column("length")).as_py() or 0),
            "source": source,
            "params": params,
            "params_hash": params_hash,
            "file_hashes": file_hashes,
            "content_hash": combined_hash(file_hashes),
            "created_unix": time.time(),
            **(extra or {}),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _swap_into_place(staging: Path, target: Path) -> None:
    if target.exists():
        retired = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, retired)
        os.rename(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, target)


def _check_contract(sequences: pa.Table, vocab: list[str], by_kind: dict[str, np.ndarray],
                    class_names: list[str]) -> None:
    if vocab[:2] != [PAD_TOKEN, UNK_TOKEN]:
        raise StoreError(f"vocabulary must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}")
    if not by_kind:
        raise StoreError("a store needs at least one embedding matrix")
    dims = set()
    for kind, vectors in by_kind.items():
        if not isinstance(kind, str) or not EMBEDDING_KIND.fullmatch(kind):
            raise StoreError(f"embedding kind {kind!r} must be a lowercase word (letters, digits, _)")
        if vectors.ndim != 2 or vectors.shape[0] != len(vocab):
            raise StoreError(f"{kind} embedding matrix shape {vectors.shape} does not match a vocabulary "
                             f"of {len(vocab)}")
        dims.add(vectors.shape[1])
    if len(dims) > 1:
        raise StoreError(f"embedding kinds differ in dimensions ({sorted(dims)}); a store has one embedding_dim")
    flat = sequences.column("token_ids").combine_chunks().flatten().to_numpy()
    if flat.size and (flat.min() <= PAD_ID or flat.max() >= len(vocab)):
        raise StoreError("token ids must lie in [1, vocab_size) and never be the pad id")
    labels = sequences.column("label").to_numpy()
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise StoreError("labels must lie in [0, num_classes)")


# ---------------------------------------------------------------------------------------------- reading

def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" in uri:
        try:
            return pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise StoreError(f"cannot open store URI {uri!r}: {exc}") from None
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def _read_bytes(fs: pafs.FileSystem, path: str) -> pa.Buffer:
    try:
        with fs.open_input_file(path) as handle:
            return handle.read_buffer()
    except (FileNotFoundError, OSError) as exc:
        raise StoreError(f"store file missing or unreadable: {path} ({type(exc).__name__})") from None


def read_manifest(uri: str) -> dict:
    fs, root = _filesystem(uri)
    raw = _read_bytes(fs, f"{root}/manifest.json").to_pybytes()
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError:
        raise StoreError(f"{uri}/manifest.json is not valid JSON") from None
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise StoreError(f"store schema_version {manifest.get('schema_version')!r}; this code reads {SCHEMA_VERSION}")
    return manifest


def existing_manifest(uri: str) -> dict | None:
    """The manifest of a complete store at ``uri``, or None when there is none (or it is unreadable)."""
    try:
        return read_manifest(uri)
    except StoreError:
        return None


def _read_table(fs: pafs.FileSystem, root: str, uri: str, manifest: dict, name: str, verify: bool) -> pa.Table:
    """One data file, read once and, with ``verify``, hashed from the same bytes."""
    buffer = _read_bytes(fs, f"{root}/{name}")
    if verify:
        actual = hashlib.sha256(memoryview(buffer)).hexdigest()
        if actual != manifest["file_hashes"].get(name):
            raise StoreError(f"{uri}/{name} does not match its manifest hash (store changed or corrupt)")
    try:
        return pq.read_table(pa.BufferReader(buffer))
    except (pa.ArrowInvalid, OSError) as exc:
        raise StoreError(f"{uri}/{name} is not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _embedding_file(uri: str, manifest: dict, kind: str | None) -> tuple[str, str]:
    """(kind, file name) of ``kind``, or of the default kind when None."""
    files = embedding_files(manifest)
    kind = next(iter(files)) if kind is None else kind
    if kind not in files:
        raise StoreError(f"store {uri} has no {kind!r} embeddings; it has {', '.join(files)}")
    name = files[kind]
    # The name comes from the manifest and becomes a path: only one of the store's own hashed files.
    if "/" in name or name not in manifest.get("file_hashes", {}):
        raise StoreError(f"{uri}/manifest.json names embedding file {name!r}, which is not one of its data files")
    return kind, name


def _matrix(uri: str, manifest: dict, name: str, table: pa.Table) -> np.ndarray:
    vectors = table.column("vector").combine_chunks()
    dim = manifest["embedding_dim"]
    if len(vectors) != manifest["vocab_size"] or vectors.type.list_size != dim:
        raise StoreError(f"{uri}/{name} holds {len(vectors)} x {vectors.type.list_size} vectors; the manifest "
                         f"says {manifest['vocab_size']} x {dim}")
    return vectors.values.to_numpy().astype(np.float32, copy=False).reshape(len(vectors), dim)


def load(uri: str, *, embedding: str | None = None, verify: bool = True, with_embeddings: bool = True) -> Store:
    """Load a store with one kind of embeddings: ``embedding`` names it (default: the store's first kind).

    Only the files this needs are read; each is read once and, with ``verify``, hashed from the same bytes.
    A kind the store lacks is a ``StoreError`` naming the kinds it has, even with ``with_embeddings=False``.
    """
    manifest = read_manifest(uri)
    kind, embedding_name = _embedding_file(uri, manifest, embedding)
    fs, root = _filesystem(uri)
    seq = _read_table(fs, root, uri, manifest, "sequences.parquet", verify)
    token_lists = seq.column("token_ids").combine_chunks()
    offsets = token_lists.offsets.to_numpy().astype(np.int64)
    tokens = token_lists.values.to_numpy().astype(np.int32, copy=False)
    # Offsets of a sliced array need not start at 0; rebase so tokens[offsets[i]:offsets[i+1]] holds.
    tokens = tokens[offsets[0]:offsets[-1]]
    offsets = offsets - offsets[0]
    split_names = seq.column("split").to_numpy(zero_copy_only=False)
    split_codes = np.full(len(split_names), -1, dtype=np.int8)
    for code, name in enumerate(SPLITS):
        split_codes[split_names == name] = code

    embeddings = None
    if with_embeddings:
        table = _read_table(fs, root, uri, manifest, embedding_name, verify)
        embeddings = _matrix(uri, manifest, embedding_name, table)

    return Store(
        uri=uri, manifest=manifest,
        labels=seq.column("label").to_numpy().astype(np.int64),
        split_codes=split_codes,
        lengths=np.diff(offsets),
        offsets=offsets, tokens=tokens, embeddings=embeddings,
        embedding_kind=kind if with_embeddings else None,
    )


def verify(uri: str) -> dict:
    """Read and hash every data file (every embedding kind), check their shapes and the content hash;
    returns the manifest. ``load`` checks only the files it reads."""
    manifest = read_manifest(uri)
    fs, root = _filesystem(uri)
    file_hashes = manifest.get("file_hashes", {})
    if manifest.get("content_hash") != combined_hash(file_hashes):
        raise StoreError(f"{uri}/manifest.json: content_hash does not match its file_hashes")
    load(uri, verify=True, with_embeddings=False)
    for kind in embedding_kinds(manifest):
        _, name = _embedding_file(uri, manifest, kind)
        _matrix(uri, manifest, name, _read_table(fs, root, uri, manifest, name, verify=True))
    return manifest


def load_vocab(uri: str) -> list[str]:
    """Token strings by id (for inspection and reports; training does not need them). Every kind's table
    has the same tokens; this reads the default one's."""
    fs, root = _filesystem(uri)
    table = pq.read_table(pa.BufferReader(_read_bytes(fs, f"{root}/{DEFAULT_EMBEDDING_FILE}")), columns=["token"])
    return table.column("token").to_pylist()
