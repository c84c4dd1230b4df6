"""Embedding kinds (--embeddings word2vec,fasttext,random): one table per kind, the manifest lists them,
load picks one, stores from before kinds existed load unchanged, and the kinds are part of params_hash."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from data_prep import store as store_mod
from data_prep.build import BuildParams, params_hash
from data_prep.embed import make_vectors, parse_kinds
from data_prep.sources import PrepError, source_identity
from data_prep.tokens import encode, sentences

KINDS = ["word2vec", "fasttext", "random"]
SMALL = dict(source="imdb", per_class=40)  # with conftest.FAST: 16-d, one worker, 2 epochs


@pytest.fixture(scope="module")
def stores(tmp_path_factory, build_small):
    """Two builds with the same parameters: the default (word2vec only) and all three kinds."""
    root = tmp_path_factory.mktemp("kinds")
    build_small(root / "one", **SMALL)
    build_small(root / "three", **SMALL, embeddings=",".join(KINDS))
    return {"one": root / "one", "three": root / "three"}


def copy_store(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_three_kinds_are_three_tables_listed_and_hashed(stores):
    path = stores["three"]
    manifest = json.loads((path / "manifest.json").read_text())
    files = {"word2vec": "embeddings.parquet", "fasttext": "embeddings-fasttext.parquet",
             "random": "embeddings-random.parquet"}
    assert manifest["embedding_kinds"] == KINDS
    assert manifest["embedding_files"] == files
    assert sorted(p.name for p in path.iterdir()) == sorted(["manifest.json", "sequences.parquet", *files.values()])
    assert set(manifest["file_hashes"]) == {"sequences.parquet", *files.values()}
    assert manifest["content_hash"] == store_mod.combined_hash(manifest["file_hashes"])
    assert manifest["params"]["embeddings"] == KINDS
    for name in files.values():  # the same schema and token rows for every kind
        table = pq.read_table(path / name)
        assert table.column_names == ["token", "vector"] and table.num_rows == manifest["vocab_size"]
    build = manifest["build"]
    assert build["fasttext_vocab"] == manifest["vocab_size"] - 2 and build["fasttext_random_rows"] == 0
    assert build["random_rows"] == 0 and build["random_std"] == pytest.approx(1 / np.sqrt(16))


def test_each_kind_loads_with_its_own_vectors(stores):
    path = str(stores["three"])
    loaded = {kind: store_mod.load(path, embedding=kind) for kind in KINDS}
    for kind, store in loaded.items():
        assert store.embedding_kind == kind and store.embedding_kinds == KINDS
        vectors = store.embeddings
        assert vectors.shape == (store.vocab_size, 16) and vectors.dtype == np.float32
        assert not vectors[store_mod.PAD_ID].any()  # <pad> zeros for every kind
        assert np.allclose(vectors[store_mod.UNK_ID], vectors[2:].mean(axis=0), atol=1e-5)  # <unk>: mean word
        assert np.isfinite(vectors).all() and np.abs(vectors[2:]).sum(axis=1).all()  # no word row is zero
        assert np.array_equal(store.tokens, loaded["word2vec"].tokens)  # one vocabulary, one set of sequences
    for a in KINDS:
        for b in KINDS:
            if a < b:
                assert not np.allclose(loaded[a].embeddings[2:], loaded[b].embeddings[2:]), (a, b)
    random_words = loaded["random"].embeddings[2:]
    assert random_words.std() == pytest.approx(1 / np.sqrt(16), rel=0.05)
    default = store_mod.load(path)
    assert default.embedding_kind == "word2vec"
    assert np.array_equal(default.embeddings, loaded["word2vec"].embeddings)


def test_first_kind_is_the_single_kind_store_byte_for_byte(stores):
    one, three = stores["one"], stores["three"]
    for name in store_mod.DATA_FILES:  # one word2vec worker: the vectors are reproducible
        assert (one / name).read_bytes() == (three / name).read_bytes(), name
    manifest = store_mod.read_manifest(str(one))
    assert manifest["embedding_kinds"] == ["word2vec"]
    assert set(manifest["file_hashes"]) == set(store_mod.DATA_FILES)
    assert "embeddings" not in manifest["params"]
    store = store_mod.load(str(one))
    assert store.embedding_kind == "word2vec" and store.embedding_kinds == ["word2vec"]


def test_store_from_before_embedding_kinds_loads_unchanged(tmp_path, stores):
    old = copy_store(stores["one"], tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["embedding_kinds"], manifest["embedding_files"]  # what stores held before kinds existed
    (old / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    store = store_mod.load(str(old))
    assert store.embedding_kind == "word2vec" and store.embedding_kinds == ["word2vec"]
    assert np.array_equal(store.embeddings, store_mod.load(str(stores["one"])).embeddings)
    assert store_mod.verify(str(old))["content_hash"] == manifest["content_hash"]
    with pytest.raises(store_mod.StoreError, match="has no 'fasttext' embeddings; it has word2vec$"):
        store_mod.load(str(old), embedding="fasttext")


def test_write_store_with_one_matrix_is_one_word2vec_table(tmp_path):
    vocab = [store_mod.PAD_TOKEN, store_mod.UNK_TOKEN, "good", "bad"]
    sequences = store_mod.sequences_table([[2, 3], [3], [2]], np.array([0, 1, 0]),
                                          np.array(["train", "valid", "test"]))
    vectors = np.arange(16, dtype=np.float32).reshape(4, 4)
    store_mod.write_store(str(tmp_path / "s"), sequences=sequences, vocab=vocab, vectors=vectors,
                          class_names=["pos", "neg"], source={"name": "test"}, params={}, params_hash="x")
    store = store_mod.load(str(tmp_path / "s"))
    assert store.embedding_kinds == ["word2vec"] and np.array_equal(store.embeddings, vectors)
    with pytest.raises(store_mod.StoreError, match="differ in dimensions"):
        store_mod.write_store(str(tmp_path / "t"), sequences=sequences, vocab=vocab,
                              vectors={"word2vec": vectors, "random": vectors[:, :2]}, class_names=["pos", "neg"],
                              source={}, params={}, params_hash="x")
    with pytest.raises(store_mod.StoreError, match="lowercase word"):
        store_mod.write_store(str(tmp_path / "t"), sequences=sequences, vocab=vocab,
                              vectors={"../x": vectors}, class_names=["pos", "neg"], source={}, params={},
                              params_hash="x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # nothing half-written


def test_unknown_kind_names_the_kinds_the_store_has(stores):
    for with_embeddings in (True, False):
        with pytest.raises(store_mod.StoreError,
                           match="has no 'glove' embeddings; it has word2vec, fasttext, random"):
            store_mod.load(str(stores["three"]), embedding="glove", with_embeddings=with_embeddings)


def test_a_changed_table_fails_when_read_and_in_verify(tmp_path, stores, run_cli):
    copy = copy_store(stores["three"], tmp_path / "copy")
    table = pq.read_table(copy / "embeddings-random.parquet")
    pq.write_table(table.slice(1), copy / "embeddings-random.parquet")
    store_mod.load(str(copy))  # the default kind does not read the random table
    with pytest.raises(store_mod.StoreError, match="embeddings-random.parquet does not match its manifest hash"):
        store_mod.load(str(copy), embedding="random")
    with pytest.raises(store_mod.StoreError, match="embeddings-random.parquet"):
        store_mod.verify(str(copy))
    result = run_cli("info", copy, "--verify")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "embeddings-random.parquet does not match" in result.stderr


def test_info_lists_the_kinds(stores, run_cli):
    result = run_cli("info", stores["three"], "--verify")
    assert result.returncode == 0, result.stderr
    assert ("embeddings  word2vec (embeddings.parquet, default), fasttext (embeddings-fasttext.parquet), "
            "random (embeddings-random.parquet)") in result.stdout
    assert "embeddings=word2vec,fasttext,random" in result.stdout and "(verified)" in result.stdout


def test_params_hash_depends_on_the_kinds_and_their_order():
    identity = source_identity("imdb", None)

    def digest(embeddings=None):
        extra = {} if embeddings is None else {"embeddings": embeddings}
        return params_hash(identity, BuildParams(out="x", **extra).data_params())

    # The default kind adds nothing to the hash, so stores built before --embeddings are still reused.
    assert "embeddings" not in BuildParams(out="x").data_params()
    assert digest() == digest("word2vec") == digest(("word2vec",)) == digest(" word2vec ")
    others = [digest(k) for k in ("word2vec,fasttext", "fasttext,word2vec", "word2vec,fasttext,random",
                                  "random", "fasttext")]
    assert len({digest(), *others}) == 6


def test_reuse_and_force_see_the_kinds(stores, build_small):
    manifest, reused = build_small(stores["three"], **SMALL, embeddings=",".join(KINDS))
    assert reused and manifest["embedding_kinds"] == KINDS
    before = (stores["one"] / "manifest.json").read_bytes()
    with pytest.raises(PrepError, match="--force"):
        build_small(stores["one"], **SMALL, embeddings="word2vec,random")
    assert (stores["one"] / "manifest.json").read_bytes() == before


@pytest.mark.parametrize("spec, needle", [
    ("glove", "unknown embedding kind 'glove'"),
    ("word2vec,Word2Vec", "unknown embedding kind 'Word2Vec'"),
    ("", "--embeddings is empty"),
    (" , ", "--embeddings is empty"),
    ("word2vec,,random", "has an empty item"),
    ("random,word2vec,random", "lists 'random' more than once"),
])
def test_parse_kinds_rejects_bad_lists(spec, needle):
    with pytest.raises(PrepError, match=needle):
        parse_kinds(spec)


def test_parse_kinds_keeps_order():
    assert parse_kinds("random, word2vec") == ("random", "word2vec")


DOCS = [["the", "film", "was", "good"], ["the", "films", "were", "bad"], ["good", "good", "acting"]] * 20


def test_make_vectors_every_kind_same_rows_and_specials():
    enc = encode(DOCS, np.ones(len(DOCS), bool))
    sents = sentences(enc.words, enc.offsets, np.arange(len(DOCS)))
    for kind in KINDS:
        vectors, facts = make_vectors(kind, sents, enc.vocab, vector_size=8, epochs=2, seed=1)
        assert vectors.shape == (len(enc.vocab), 8) and vectors.dtype == np.float32, kind
        assert not vectors[store_mod.PAD_ID].any()
        assert np.allclose(vectors[store_mod.UNK_ID], vectors[2:].mean(axis=0), atol=1e-6)
        again, _ = make_vectors(kind, sents, enc.vocab, vector_size=8, epochs=2, seed=1)
        assert np.array_equal(vectors, again), kind  # one worker, same seed: same vectors
    _, facts = make_vectors("fasttext", sents, enc.vocab, vector_size=8, epochs=2, seed=1)
    assert facts["fasttext_vocab"] == len(enc.vocab) - 2 and facts["fasttext_random_rows"] == 0
