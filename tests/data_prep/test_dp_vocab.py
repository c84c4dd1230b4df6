"""Vocabulary and embeddings: pad/unk ids, frequency order, OOV -> unk, truncation, stemming, and
train-only word2vec against the seed's leaky ``--w2v-on all``."""
from __future__ import annotations

import numpy as np

from data_prep import store as store_mod
from data_prep.embed import train_vectors
from data_prep.tokens import encode, sentences, truncate

DOCS = [["the", "film", "was", "good"], ["the", "film", "was", "bad"], ["good", "good", "acting"],
        ["unseen", "words", "the"]]
TRAIN_ROWS = np.array([True, True, True, False])


def test_vocab_ids_order_and_oov():
    enc = encode(DOCS, TRAIN_ROWS)
    assert enc.vocab[:2] == ["<pad>", "<unk>"]
    # the: 2, good: 3, film: 2, was: 2 -> good first, ties alphabetical.
    assert enc.vocab[2:] == ["good", "film", "the", "was", "acting", "bad"]
    assert enc.counts[:3].tolist() == [0, 0, 3]
    last = enc.ids[enc.offsets[3]:enc.offsets[4]].tolist()
    assert last == [1, 1, enc.vocab.index("the")]  # words only in the test row -> <unk>
    assert (enc.ids != store_mod.PAD_ID).all()


def test_counting_all_rows_puts_test_words_in_the_vocab():
    enc = encode(DOCS, np.ones(4, bool))
    assert "unseen" in enc.vocab and (enc.ids != store_mod.UNK_ID).all()


def test_min_count_sends_rare_words_to_unk():
    enc = encode(DOCS, TRAIN_ROWS, min_count=2)
    assert enc.vocab[2:] == ["good", "film", "the", "was"]
    assert enc.ids[enc.offsets[2]:enc.offsets[3]].tolist() == [2, 2, 1]  # "acting" -> unk


def test_stemming_merges_word_forms_once_per_word():
    enc = encode([["films", "film", "acting", "acted"]], np.array([True]), stem=True)
    assert enc.vocab[2:] == ["act", "film"]
    assert enc.words.tolist() == ["film", "film", "act", "act"]


def test_truncate_keeps_first_tokens_of_each_row():
    enc = encode(DOCS, TRAIN_ROWS)
    ids, offsets = truncate(enc.ids, enc.offsets, 2)
    assert np.diff(offsets).tolist() == [2, 2, 2, 2]
    for i in range(4):
        assert ids[offsets[i]:offsets[i + 1]].tolist() == enc.ids[enc.offsets[i]:enc.offsets[i] + 2].tolist()


def test_vectors_pad_zero_unk_mean_and_aligned_rows():
    enc = encode(DOCS * 20, np.tile(TRAIN_ROWS, 20))
    sents = sentences(enc.words, enc.offsets, np.flatnonzero(np.tile(TRAIN_ROWS, 20)))
    vectors, facts = train_vectors(sents, enc.vocab + ["never_trained"], vector_size=8, epochs=2, seed=1)
    assert vectors.shape == (len(enc.vocab) + 1, 8) and vectors.dtype == np.float32
    assert not vectors[store_mod.PAD_ID].any()
    assert np.allclose(vectors[store_mod.UNK_ID], vectors[2:-1].mean(axis=0), atol=1e-5)
    assert facts["random_rows"] == 1 and np.abs(vectors[-1]).max() > 0


def test_train_only_word2vec_versus_leaky_all(tmp_path, build_small):
    train_only, _ = build_small(tmp_path / "train", source="imdb", per_class=40)
    leaky, _ = build_small(tmp_path / "all", source="imdb", per_class=40, w2v_on="all")
    a, b = store_mod.load(str(tmp_path / "train")), store_mod.load(str(tmp_path / "all"))
    test_a, test_b = a.indices("test"), b.indices("test")
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.split_codes, b.split_codes)
    tokens_a = np.concatenate([a.tokens[a.offsets[i]:a.offsets[i + 1]] for i in test_a])
    tokens_b = np.concatenate([b.tokens[b.offsets[i]:b.offsets[i + 1]] for i in test_b])
    assert (tokens_a == store_mod.UNK_ID).mean() > 0.01  # held-out words are unknown to a fair model
    assert not (tokens_b == store_mod.UNK_ID).any()  # the leak: every test word has a vector
    assert leaky["vocab_size"] > train_only["vocab_size"]
    assert train_only["build"]["w2v_tokens"] < leaky["build"]["w2v_tokens"]
    assert train_only["params"]["w2v_on"] == "train" and leaky["params"]["w2v_on"] == "all"
