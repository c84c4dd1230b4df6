"""Embeddings for a vocabulary: one float32 matrix (V, D) per kind, row i = token id i.

Kinds, chosen with ``python -m data_prep build --embeddings word2vec,fasttext,random`` (default
``word2vec``; each kind becomes its own table in the store, see ``store.py``):

- ``word2vec``: gensim ``Word2Vec`` trained on the sentences it is given (the train split by default;
  every split with ``--w2v-on all``, the blog's leak), with the seed's settings by default: 500
  dimensions, window 3, skip-gram, min_count 1, 5 epochs, one worker per core.
- ``fasttext``: gensim ``FastText`` on the same sentences with the same settings, plus subword
  information: a word's vector also sums its character 3-6-grams, so rare words and word forms share
  what their spellings share.
- ``random``: no pretraining, seeded N(0, 1/D) vectors (see ``random_vectors`` for the scale): the
  baseline that shows what pretraining is worth.

Rows of every matrix (V, D), whatever the kind:
- 0 ``<pad>``: zeros, so padding adds nothing to sums and max-pools over real tokens win.
- 1 ``<unk>``: the mean of the kind's word vectors. An unknown word is then an "average word" that
  pulls a frozen-embedding model in no particular direction; a random vector would be an arbitrary
  direction the model never saw during training (with min_count 1 and train-only counting, ``<unk>``
  occurs only in valid/test, so its row is never trained unless embeddings are fine-tuned on it).
- words in the vocabulary that word2vec (or fastText) lacks (possible only if its vocabulary differs
  from ours): small random vectors, N(0, (0.1 * std of trained vectors)^2), seeded.

    vectors, facts = make_vectors("fasttext", sentences, vocab, vector_size=100, seed=15)

Reproducibility: with ``--workers 1`` the vectors are bit-for-bit identical across runs and processes
(gensim 4 seeds its initial vectors from ``seed``, not from Python's randomised string hash); with several
workers, thread scheduling changes them slightly from run to run. ``random`` never depends on workers.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from data_prep.sources import PrepError
from data_prep.store import PAD_ID, UNK_ID

Log = Callable[[str], None]

EMBEDDING_KINDS = ("word2vec", "fasttext", "random")
DEFAULT_KINDS = ("word2vec",)
# gensim's default of 2M hash buckets for the n-gram vectors is a 4 GB matrix at 500 dimensions. IMDB's
# train-split vocabulary (seed 15) has 289,055 distinct 3-6-grams over 60,486 words with all 25k reviews,
# 118,933 over 19,592 words with 1,000 per class; 200k buckets keep the matrix at 0.4 GB at 500-d. A shared
# bucket matters little: a vocabulary word's vector also has its own whole-word row. Changing this
# changes stores: bump build.PIPELINE_VERSION.
FASTTEXT_BUCKETS = 200_000
FASTTEXT_NGRAMS = (3, 6)  # gensim's (and fastText's) default min_n, max_n


def parse_kinds(spec: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """'word2vec,fasttext' -> ('word2vec', 'fasttext'); PrepError on an unknown, empty or repeated kind."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    kinds = tuple(str(item).strip() for item in items)
    expected = ", ".join(EMBEDDING_KINDS)
    if not any(kinds):
        raise PrepError(f"--embeddings is empty; expected a comma-separated list of {expected}")
    for kind in kinds:
        if not kind:
            raise PrepError(f"--embeddings {','.join(kinds)!r} has an empty item; expected kinds from {expected}")
        if kind not in EMBEDDING_KINDS:
            raise PrepError(f"unknown embedding kind {kind!r} in --embeddings; expected one of {expected}")
        if kinds.count(kind) > 1:
            raise PrepError(f"--embeddings lists {kind!r} more than once")
    return kinds


def make_vectors(kind: str, sentences: list[list[str]], vocab: list[str], *, vector_size: int = 500,
                 window: int = 3, sg: int = 1, min_count: int = 1, epochs: int = 5, workers: int = 1,
                 seed: int = 0, log: Log = lambda _m: None) -> tuple[np.ndarray, dict]:
    """(V, vector_size) float32 matrix of one kind, aligned with ``vocab``, and a small dict of facts."""
    if kind == "random":
        return random_vectors(vocab, vector_size, seed)
    if kind not in ("word2vec", "fasttext"):
        raise ValueError(f"unknown embedding kind {kind!r}")
    return train_vectors(sentences, vocab, vector_size=vector_size, window=window, sg=sg,
                         min_count=min_count, epochs=epochs, workers=workers, seed=seed, log=log,
                         subwords=kind == "fasttext")


def random_vectors(vocab: list[str], vector_size: int, seed: int) -> tuple[np.ndarray, dict]:
    """Seeded N(0, 1/D) word rows: element std 1/sqrt(D), so a vector's length is about 1.

    Why this scale and not a fixed N(0, 0.1^2): trained word2vec vectors here have element std close to
    1/sqrt(D) at every D (std * sqrt(D) = 0.93, 0.95, 0.94 at D = 32, 100, 500; mean length 0.75-0.78;
    IMDB, 1,000 reviews per class, seed settings; docs/store.md shows the command for 500-d), while a
    fixed 0.1 would make random vectors 2.2 long at 500-d, three times the trained ones. Matched scale means a model sees the same input magnitudes with either
    kind, so a difference in accuracy is the pretraining, not the scale.
    """
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(vector_size)
    vectors = np.empty((len(vocab), vector_size), dtype=np.float32)
    vectors[2:] = rng.normal(0.0, scale, size=(max(len(vocab) - 2, 0), vector_size))
    vectors[PAD_ID] = 0.0
    vectors[UNK_ID] = vectors[2:].mean(axis=0) if len(vocab) > 2 else 0.0
    return vectors, {"random_std": round(float(scale), 6)}


def train_vectors(sentences: list[list[str]], vocab: list[str], *, vector_size: int = 500, window: int = 3,
                  sg: int = 1, min_count: int = 1, epochs: int = 5, workers: int = 1, seed: int = 0,
                  log: Log = lambda _m: None, subwords: bool = False) -> tuple[np.ndarray, dict]:
    """(V, vector_size) float32 matrix aligned with ``vocab`` and a small dict of training facts.

    ``subwords`` trains gensim ``FastText`` instead of ``Word2Vec``, with the same settings."""
    from gensim.models import FastText, Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    name = "fasttext" if subwords else "word2vec"

    class EpochLogger(CallbackAny2Vec):
        def __init__(self):
            self.epoch, self.start = 0, time.perf_counter()

        def on_epoch_end(self, model):
            self.epoch += 1
            log(f"  {name} epoch {self.epoch}/{epochs} ({time.perf_counter() - self.start:.1f} s)")

    tokens = sum(len(s) for s in sentences)
    log(f"{name}: {len(sentences):,} sentences, {tokens:,} tokens, {vector_size}-d, window {window}, "
        f"{'skip-gram' if sg else 'CBOW'}, {epochs} epochs, {workers} worker(s)"
        + (f", {FASTTEXT_NGRAMS[0]}-{FASTTEXT_NGRAMS[1]}-grams in {FASTTEXT_BUCKETS:,} buckets" if subwords else ""))
    start = time.perf_counter()
    settings = dict(sentences=sentences, vector_size=vector_size, window=window, sg=sg, min_count=min_count,
                    epochs=epochs, workers=workers, seed=seed, callbacks=[EpochLogger()])
    if subwords:
        model = FastText(**settings, min_n=FASTTEXT_NGRAMS[0], max_n=FASTTEXT_NGRAMS[1], bucket=FASTTEXT_BUCKETS)
    else:
        model = Word2Vec(**settings)
    wv = model.wv

    rng = np.random.default_rng(seed)
    trained = wv.vectors.astype(np.float32, copy=False)  # (W, D) in gensim's own order
    vectors = np.empty((len(vocab), vector_size), dtype=np.float32)
    model_rows = np.array([wv.key_to_index.get(w, -1) for w in vocab[2:]], dtype=np.int64)  # (V-2,)
    have = model_rows >= 0
    words = vectors[2:]
    words[have] = trained[model_rows[have]]
    scale = 0.1 * float(trained.std()) if trained.size else 0.01
    words[~have] = rng.normal(0.0, scale, size=(int((~have).sum()), vector_size))
    vectors[PAD_ID] = 0.0
    vectors[UNK_ID] = trained.mean(axis=0) if len(trained) else 0.0
    seconds = round(time.perf_counter() - start, 2)
    if subwords:
        facts = {"fasttext_vocab": len(wv), "fasttext_tokens": tokens, "fasttext_random_rows": int((~have).sum()),
                 "fasttext_buckets": FASTTEXT_BUCKETS, "fasttext_seconds": seconds}
    else:  # the names every word2vec store has had since before fastText (manifest "build" counters)
        facts = {"w2v_vocab": len(wv), "w2v_tokens": tokens, "random_rows": int((~have).sum()),
                 "w2v_seconds": seconds}
    return vectors, facts
