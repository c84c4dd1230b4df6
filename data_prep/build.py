"""The data_prep pipeline: read -> labels -> balance -> split -> tokenize -> vocabulary -> embeddings -> store.

    from data_prep.build import BuildParams, build
    manifest, reused = build(BuildParams(source="imdb", out="/tmp/imdb1k", per_class=1000, max_len=400))

The CLI (``python -m data_prep build ...``, see ``__main__.py``) is a thin wrapper over this. A build is
identified by ``params_hash``: the source identity (for files: absolute path, size and mtime; for imdb:
the package version), every parameter that changes the data, and ``PIPELINE_VERSION``. If ``out`` already
holds a store with that hash, it is reused in well under a second; a store with another hash is replaced
only with ``force``. ``workers`` is recorded but not hashed: it changes speed, not the data's meaning.
``embeddings`` lists the embedding kinds to train (``embed.EMBEDDING_KINDS``), the store's default first:

    build(BuildParams(out="/tmp/imdb1k", per_class=1000, embeddings="word2vec,fasttext,random"))
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep import store as store_mod
from data_prep.embed import DEFAULT_KINDS, parse_kinds
from data_prep.sources import SOURCES, PrepError, cpu_count, source_identity

PIPELINE_VERSION = 1  # bump when a change to the code changes the stores it writes


@dataclass(frozen=True)
class BuildParams:
    out: str
    source: str = "imdb"
    input: str | None = None
    text_col: str = "text"
    label_col: str = "label"
    label_map: str | None = None
    limit: int | None = None
    per_class: int | None = None
    test_size: float = 0.3
    valid_size: float = 0.1
    seed: int = 15
    stem: bool = False
    max_len: int | None = None
    vector_size: int = 500
    window: int = 3
    sg: int = 1
    min_count: int = 1
    w2v_epochs: int = 5
    w2v_on: str = "train"
    embeddings: tuple[str, ...] | str = DEFAULT_KINDS  # "word2vec,fasttext" is normalised to a tuple
    workers: int = 0  # 0 = one per core
    force: bool = False

    def __post_init__(self):
        object.__setattr__(self, "embeddings", parse_kinds(self.embeddings))  # frozen: the one normalisation
        if self.source not in SOURCES:
            raise PrepError(f"unknown source {self.source!r}; expected one of {', '.join(SOURCES)}")
        if self.source == "imdb" and self.input:
            raise PrepError("--source imdb is bundled and takes no --input")
        for name in ("limit", "per_class", "max_len"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise PrepError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
        for name in ("vector_size", "window", "min_count", "w2v_epochs"):
            if getattr(self, name) < 1:
                raise PrepError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("test_size", "valid_size"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise PrepError(f"--{name.replace('_', '-')} must lie strictly between 0 and 1, got {value}")
        if self.sg not in (0, 1):
            raise PrepError(f"--sg must be 0 (CBOW) or 1 (skip-gram), got {self.sg}")
        if self.w2v_on not in ("train", "all"):
            raise PrepError(f"--w2v-on must be 'train' or 'all', got {self.w2v_on!r}")
        if self.workers < 0:
            raise PrepError(f"--workers must be 0 (one per core) or more, got {self.workers}")
        if self.seed < 0:
            raise PrepError(f"--seed must be non-negative, got {self.seed}")
        if not str(self.out).strip():
            raise PrepError("--out must name a folder")

    def data_params(self) -> dict:
        """The parameters that define the data (hashed and written to the manifest)."""
        params = dataclasses.asdict(self)
        for key in ("out", "force", "input", "workers"):
            params.pop(key)
        if self.source != "table":
            for key in ("text_col", "label_col"):
                params.pop(key)
        # The default kind is left out so that stores built before --embeddings existed keep their
        # params_hash and are reused, not refused; any other list (order too: the first kind is the
        # default) is a different build.
        if self.embeddings == DEFAULT_KINDS:
            params.pop("embeddings")
        else:
            params["embeddings"] = list(self.embeddings)
        return params


def log_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def params_hash(identity: dict, params: dict) -> str:
    blob = json.dumps({"pipeline": PIPELINE_VERSION, "source": identity, "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def check_out(out: str, new_hash: str, force: bool) -> dict | None:
    """The existing manifest when ``out`` holds the same build; raises when replacing it is not allowed."""
    path = Path(out[len("file://"):] if out.startswith("file://") else out)
    if not path.exists():
        return None
    if not path.is_dir():
        raise PrepError(f"--out {out} exists and is not a folder")
    if not (path / "manifest.json").exists():
        if any(path.iterdir()):
            # Never replace a folder that is not a store: --out pointed at the wrong place.
            raise PrepError(f"--out {out} exists, is not empty and holds no store; choose another folder")
        return None
    manifest = store_mod.existing_manifest(str(path))  # None: unreadable or another schema version
    if manifest is not None and manifest.get("params_hash") == new_hash:
        return manifest
    if not force:
        raise PrepError(f"--out {out} holds a store built from other inputs or parameters; "
                        "pass --force to replace it")
    return None


def build(params: BuildParams, log=log_stderr) -> tuple[dict, bool]:
    """Build (or reuse) the store at ``params.out``; returns (manifest, reused)."""
    from data_prep import embed, labels, sources, tokens  # heavy imports only when building

    started = time.perf_counter()
    identity = source_identity(params.source, params.input)
    data_params = params.data_params()
    digest = params_hash(identity, data_params)
    existing = check_out(params.out, digest, params.force)
    if existing is not None:
        log(f"reusing {params.out}: same source and parameters (params_hash {digest[:12]})")
        return existing, True

    def step(message: str) -> None:
        log(f"[{time.perf_counter() - started:6.1f} s] {message}")

    corpus = sources.read_source(params.source, params.input, text_col=params.text_col,
                                 label_col=params.label_col, label_map=params.label_map,
                                 limit=params.limit, log=step)
    codes, class_names, dropped = labels.encode_labels(corpus.frame["raw_label"].to_numpy(), corpus.label_map)
    corpus.stats["unmapped_labels_dropped"] = int(dropped.sum())
    available = labels.class_counts(codes, len(class_names))
    step(f"{len(codes):,} labelled rows: " + ", ".join(f"{n} {c:,}" for n, c in zip(class_names, available)))

    rows = labels.balance(codes, params.per_class, params.seed, class_names)
    row_codes = codes[rows]
    split = labels.stratified_split(row_codes, params.test_size, params.valid_size, params.seed)
    step(f"balanced to {len(rows) // len(class_names):,} per class; split train/valid/test "
         f"{np.bincount(split, minlength=3).tolist()}")

    texts = corpus.texts(rows)
    token_lists = tokens.tokenize(texts, log=step)
    counted = np.ones(len(rows), bool) if params.w2v_on == "all" else split == labels.TRAIN
    encoded = tokens.encode(token_lists, counted, stem=params.stem, min_count=params.min_count)
    del token_lists
    lengths = np.diff(encoded.offsets)
    empty = int((lengths == 0).sum())
    step(f"tokenized {len(rows):,} texts: {len(encoded.ids):,} tokens, vocabulary {len(encoded.vocab):,} "
         f"(counted on {params.w2v_on}), {empty} texts without a word")

    sentences = tokens.sentences(encoded.words, encoded.offsets, np.flatnonzero(counted & (lengths > 0)))
    vectors, embed_facts = {}, {}
    for kind in params.embeddings:  # every kind from the same sentences, vocabulary and settings
        vectors[kind], facts = embed.make_vectors(
            kind, sentences, encoded.vocab, vector_size=params.vector_size, window=params.window, sg=params.sg,
            min_count=params.min_count, epochs=params.w2v_epochs, workers=params.workers or cpu_count(),
            seed=params.seed, log=step)
        embed_facts.update(facts)
    del sentences

    ids, offsets = tokens.truncate(encoded.ids, encoded.offsets, params.max_len)
    # A text with no word at all would be a zero-length sequence; store it as one <unk> so every row
    # is a valid model input (rare: reviews made only of digits or punctuation).
    ids, offsets = _fill_empty(ids, offsets)
    import pyarrow as pa
    token_ids = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(ids, type=pa.int32()))
    sequences = store_mod.sequences_table(token_ids, row_codes, np.asarray(store_mod.SPLITS)[split])
    stats = {**corpus.stats, "texts_without_words": empty, **embed_facts,
             "build_seconds": round(time.perf_counter() - started, 1)}
    manifest = store_mod.write_store(
        params.out, sequences=sequences, vocab=encoded.vocab, vectors=vectors, class_names=class_names,
        source=identity, params={**data_params, "workers": params.workers or cpu_count()},
        params_hash=digest, extra={"build": stats, "pipeline_version": PIPELINE_VERSION})
    step(f"wrote {params.out} (content_hash {manifest['content_hash'][:12]})")
    return manifest, False


def _fill_empty(ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.diff(offsets)
    if lengths.min(initial=1) > 0:
        return ids, offsets
    empty = np.flatnonzero(lengths == 0)
    ids = np.insert(ids, offsets[empty], store_mod.UNK_ID).astype(np.int32)
    new_lengths = np.maximum(lengths, 1)
    offsets = np.zeros_like(offsets)
    np.cumsum(new_lengths, out=offsets[1:])
    return ids, offsets


def summary_lines(manifest: dict) -> list[str]:
    """Counts per split and class, for the end of a build and for ``info``."""
    names = manifest["class_names"]
    lines = [f"{'split':<6} {'rows':>7}  " + "  ".join(f"{n:>9}" for n in names)]
    for split in store_mod.SPLITS:
        per_class = manifest.get("class_counts", {}).get(split, [])
        lines.append(f"{split:<6} {manifest['counts'][split]:>7}  " + "  ".join(f"{c:>9}" for c in per_class))
    return lines
