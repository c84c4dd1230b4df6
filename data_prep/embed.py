"""Word2vec embeddings for a vocabulary: one float32 row per token id.

gensim ``Word2Vec`` is trained on the sentences it is given (the train split by default; every split with
``--w2v-on all``, the blog's leak), with the seed's settings by default: 500 dimensions, window 3,
skip-gram, min_count 1, 5 epochs, one worker per core.

Rows of the matrix (V, D):
- 0 ``<pad>``: zeros, so padding adds nothing to sums and max-pools over real tokens win.
- 1 ``<unk>``: the mean of the trained word vectors. An unknown word is then an "average word" that
  pulls a frozen-embedding model in no particular direction; a random vector would be an arbitrary
  direction the model never saw during training (with min_count 1 and train-only counting, ``<unk>``
  occurs only in valid/test, so its row is never trained unless embeddings are fine-tuned on it).
- words in the vocabulary that word2vec lacks (possible only if its vocabulary differs from ours):
  small random vectors, N(0, (0.1 * std of trained vectors)^2), seeded.

Reproducibility: with ``--workers 1`` the vectors are bit-for-bit identical across runs and processes
(gensim 4 seeds its initial vectors from ``seed``, not from Python's randomised string hash); with several
workers, thread scheduling changes them slightly from run to run.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from data_prep.store import PAD_ID, UNK_ID

Log = Callable[[str], None]


def train_vectors(sentences: list[list[str]], vocab: list[str], *, vector_size: int = 500, window: int = 3,
                  sg: int = 1, min_count: int = 1, epochs: int = 5, workers: int = 1, seed: int = 0,
                  log: Log = lambda _m: None) -> tuple[np.ndarray, dict]:
    """(V, vector_size) float32 matrix aligned with ``vocab`` and a small dict of training facts."""
    from gensim.models import Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    class EpochLogger(CallbackAny2Vec):
        def __init__(self):
            self.epoch, self.start = 0, time.perf_counter()

        def on_epoch_end(self, model):
            self.epoch += 1
            log(f"  word2vec epoch {self.epoch}/{epochs} ({time.perf_counter() - self.start:.1f} s)")

    tokens = sum(len(s) for s in sentences)
    log(f"word2vec: {len(sentences):,} sentences, {tokens:,} tokens, {vector_size}-d, window {window}, "
        f"{'skip-gram' if sg else 'CBOW'}, {epochs} epochs, {workers} worker(s)")
    start = time.perf_counter()
    model = Word2Vec(sentences=sentences, vector_size=vector_size, window=window, sg=sg, min_count=min_count,
                     epochs=epochs, workers=workers, seed=seed, callbacks=[EpochLogger()])
    wv = model.wv

    rng = np.random.default_rng(seed)
    trained = wv.vectors.astype(np.float32, copy=False)  # (W, D) in gensim's own order
    vectors = np.empty((len(vocab), vector_size), dtype=np.float32)
    w2v_rows = np.array([wv.key_to_index.get(w, -1) for w in vocab[2:]], dtype=np.int64)  # (V-2,)
    have = w2v_rows >= 0
    words = vectors[2:]
    words[have] = trained[w2v_rows[have]]
    scale = 0.1 * float(trained.std()) if trained.size else 0.01
    words[~have] = rng.normal(0.0, scale, size=(int((~have).sum()), vector_size))
    vectors[PAD_ID] = 0.0
    vectors[UNK_ID] = trained.mean(axis=0) if len(trained) else 0.0
    facts = {"w2v_vocab": len(wv), "w2v_tokens": tokens, "random_rows": int((~have).sum()),
             "w2v_seconds": round(time.perf_counter() - start, 2)}
    return vectors, facts
