"""The store contract as built by the pipeline: manifest, Parquet schema, loader, hashes, reuse, --force."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_prep import store as store_mod
from data_prep.sources import PrepError

MANIFEST_KEYS = {"schema_version", "num_classes", "class_names", "vocab_size", "embedding_dim", "pad_id",
                 "unk_id", "counts", "class_counts", "source", "params", "params_hash", "file_hashes",
                 "content_hash", "max_length", "build", "embedding_kinds", "embedding_files"}


@pytest.fixture(scope="module")
def imdb_store(tmp_path_factory, build_small):
    out = tmp_path_factory.mktemp("imdb") / "store"
    build_small(out, source="imdb", per_class=40)
    return out


def test_manifest_and_parquet_schema(imdb_store):
    manifest = json.loads((imdb_store / "manifest.json").read_text())
    assert MANIFEST_KEYS <= manifest.keys()
    assert manifest["class_names"] == ["negative", "positive"] and manifest["num_classes"] == 2
    assert manifest["counts"] == {"train": 50, "valid": 6, "test": 24}
    assert manifest["class_counts"]["test"] == [12, 12]
    assert manifest["source"]["name"] == "imdb" and manifest["source"]["version"]
    assert manifest["params"]["per_class"] == 40 and manifest["params"]["vector_size"] == 16
    assert (manifest["pad_id"], manifest["unk_id"], manifest["embedding_dim"]) == (0, 1, 16)
    seq = pq.read_table(imdb_store / "sequences.parquet")
    assert seq.schema.field("split").type == pa.string()
    assert pa.types.is_integer(seq.schema.field("label").type)
    assert seq.schema.field("token_ids").type == pa.list_(pa.int32())
    assert pa.types.is_integer(seq.schema.field("length").type)
    emb = pq.read_table(imdb_store / "embeddings.parquet")
    assert emb.num_rows == manifest["vocab_size"]
    assert emb.column("token").to_pylist()[:2] == ["<pad>", "<unk>"]
    assert emb.schema.field("vector").type.value_type == pa.float32()
    assert not any(p.suffix == ".pkl" or p.suffix == ".pickle" for p in imdb_store.iterdir())


def test_loaded_sequences_are_unpadded_and_truncated(imdb_store):
    store = store_mod.load(str(imdb_store))
    assert store.tokens.dtype == np.int32 and store.tokens.min() >= 1
    assert (store.tokens != store_mod.PAD_ID).all()
    assert store.lengths.max() <= 100 and store.lengths.min() >= 1
    assert store.embeddings.shape == (store.vocab_size, 16) and not store.embeddings[0].any()
    seq = pq.read_table(imdb_store / "sequences.parquet")
    assert np.array_equal(seq.column("length").to_numpy(), store.lengths)
    assert np.bincount(store.labels[store.indices("train")]).tolist() == [25, 25]


def test_file_uri_loads_the_same_store(imdb_store):
    a = store_mod.load(str(imdb_store))
    b = store_mod.load(f"file://{imdb_store}")
    assert np.array_equal(a.tokens, b.tokens) and a.content_hash == b.content_hash


def test_with_split_codes_restricts_splits_without_touching_the_original(imdb_store):
    store = store_mod.load(str(imdb_store))
    original = {split: store.indices(split).copy() for split in store_mod.SPLITS}  # fills the cache
    codes = store.split_codes.copy()
    train = store.indices("train")
    codes[train[::2]] = -1  # every other training row in no split
    codes[store.indices("valid")] = store_mod.SPLITS.index("test")
    small = store.with_split_codes(codes)
    for code, split in enumerate(store_mod.SPLITS):
        assert np.array_equal(small.indices(split), np.flatnonzero(codes == code)), split
        assert np.array_equal(store.indices(split), original[split]), split  # the original keeps its splits
    assert len(small.indices("train")) == len(train) // 2 and len(small.indices("valid")) == 0
    assert sum(len(small.indices(s)) for s in store_mod.SPLITS) == int((codes >= 0).sum())
    codes[:] = 0  # the caller's array is not the store's
    assert len(small.indices("test")) == len(original["test"]) + len(original["valid"])
    assert small.tokens is store.tokens and small.embedding_kind == store.embedding_kind  # data shared
    with pytest.raises(store_mod.StoreError, match="shape"):
        store.with_split_codes(codes[:-1])
    with pytest.raises(store_mod.StoreError, match="-1 .. 2"):
        store.with_split_codes(np.full_like(codes, 3))
    with pytest.raises(store_mod.StoreError, match="integers"):
        store.with_split_codes(codes.astype(float))


def test_modified_data_file_fails_the_hash_check(tmp_path, imdb_store):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("manifest.json", *store_mod.DATA_FILES):
        (copy / name).write_bytes((imdb_store / name).read_bytes())
    table = pq.read_table(copy / "sequences.parquet")
    pq.write_table(table.slice(1), copy / "sequences.parquet")
    with pytest.raises(store_mod.StoreError, match="does not match its manifest hash"):
        store_mod.load(str(copy))


def test_reuse_skips_the_work_and_force_rebuilds(tmp_path, review_csv, build_small):
    out = tmp_path / "store"
    kw = dict(source="table", input=review_csv, text_col="review", label_col="sentiment", per_class=30)
    first, reused = build_small(out, **kw)
    assert not reused
    mtime = os.stat(out / "sequences.parquet").st_mtime_ns
    again, reused = build_small(out, **kw)
    assert reused and again["content_hash"] == first["content_hash"]
    assert os.stat(out / "sequences.parquet").st_mtime_ns == mtime  # nothing rewritten
    with pytest.raises(PrepError, match="--force"):
        build_small(out, **{**kw, "per_class": 20})
    assert store_mod.read_manifest(str(out))["params"]["per_class"] == 30  # old store intact
    forced, reused = build_small(out, **{**kw, "per_class": 20}, force=True)
    assert not reused and forced["counts"]["test"] == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no temp folders left


def test_touching_the_input_invalidates_reuse(tmp_path, review_csv, build_small):
    out = tmp_path / "store"
    kw = dict(source="table", input=review_csv, text_col="review", label_col="sentiment", per_class=20)
    build_small(out, **kw)
    stat = os.stat(review_csv)
    os.utime(review_csv, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        with pytest.raises(PrepError, match="--force"):
            build_small(out, **kw)
    finally:
        os.utime(review_csv, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_same_seed_same_rows_and_splits(tmp_path, review_csv, build_small):
    kw = dict(source="table", input=review_csv, text_col="review", label_col="sentiment", per_class=25)
    build_small(tmp_path / "a", **kw)
    build_small(tmp_path / "b", **kw)
    build_small(tmp_path / "c", **kw, seed=99)
    a, b, c = (pq.read_table(tmp_path / n / "sequences.parquet") for n in "abc")
    assert a.equals(b)  # identical tokens, labels and splits
    emb = [pq.read_table(tmp_path / n / "embeddings.parquet") for n in "ab"]
    assert emb[0].equals(emb[1])  # one word2vec worker: identical vectors
    assert not a.column("token_ids").equals(c.column("token_ids"))


def test_yelp_and_stemmed_store(tmp_path, yelp_file, build_small):
    manifest, _ = build_small(tmp_path / "yelp", source="yelp", input=str(yelp_file), stem=True)
    assert manifest["class_names"] == ["negative", "neutral", "positive"]
    per_class = np.array([manifest["class_counts"][s] for s in store_mod.SPLITS]).sum(axis=0)
    assert len(set(per_class.tolist())) == 1  # balanced to the smallest class
    vocab = store_mod.load_vocab(str(tmp_path / "yelp"))
    assert "movi" in vocab and "movies" not in vocab  # Porter stems


def test_text_without_words_is_stored_as_one_unk(tmp_path, imdb_reviews, build_small):
    texts = imdb_reviews["text"].iloc[:40].tolist()
    texts[7] = "10/10 !!! :-)"  # no run of two letters: simple_preprocess yields nothing
    path = tmp_path / "t.csv"
    # Equal classes, so balancing keeps every row, the wordless one included.
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(40)]}).to_csv(path, index=False)
    manifest, _ = build_small(tmp_path / "store", source="table", input=str(path))
    assert manifest["build"]["texts_without_words"] == 1
    store = store_mod.load(str(tmp_path / "store"))
    assert store.lengths.min() == 1
    one = np.flatnonzero(store.lengths == 1)
    assert any(store.tokens[store.offsets[i]] == store_mod.UNK_ID for i in one)
