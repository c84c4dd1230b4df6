"""Typed, validated training configs built from the project's flat key vocabulary.

A flat dict (from a preset, a search-space YAML, a Tune param dict or ``--set key=value``) becomes a frozen
``TrainConfig`` holding the training keys plus one architecture config (``CNNConfig``, ``LSTMConfig``,
``FastTextConfig`` or ``LinearConfig``). ``to_flat`` gives the same flat vocabulary back, JSON-able, so every result can carry
the exact settings it came from:

    cfg = TrainConfig.from_flat({"arch": "cnn", "widths": "3,4,5", "filters": 100})
    cfg.model.widths        # (3, 4, 5)
    cfg.to_flat()["widths"] # "3,4,5"  (a string: hashable, and what Optuna categoricals hold)

Unknown keys, and keys of another architecture, raise ``ValueError`` naming the key. The ``linear``
architecture (TF-IDF n-grams + logistic regression, no network) takes only the training keys of
``LINEAR_TRAIN_KEYS``; the others (optimizer, batches, embeddings, padding) raise too.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields

ARCHS = ("cnn", "lstm", "fasttext", "linear")
NETWORK_ARCHS = ("cnn", "lstm", "fasttext")  # trained by the torch trainer, over the store's embeddings


READOUTS = ("last_step", "final_state", "max", "mean")


def _widths(value) -> tuple[int, ...]:
    """Widths arrive as a list, a tuple, an int or a comma string such as "3,4,5"."""
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
        try:
            return tuple(int(p) for p in parts)
        except ValueError:
            raise ValueError(f"widths must be integers, got {value!r}") from None
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class CNNConfig:
    widths: tuple[int, ...] = (3, 4, 5)
    filters: int = 100  # per width
    activation: str = "relu"
    dropout: float = 0.5
    conv_layers: int = 1  # 1 = Kim style: one conv per width, max over time

    def __post_init__(self):
        object.__setattr__(self, "widths", _widths(self.widths))
        _check(len(self.widths) > 0 and min(self.widths) >= 1, f"widths must be >= 1, got {self.widths}")
        _check(self.filters >= 1, f"filters must be >= 1, got {self.filters}")
        _check(self.activation in ("relu", "tanh"), f"activation must be relu or tanh, got {self.activation!r}")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        _check(self.conv_layers >= 1, f"conv_layers must be >= 1, got {self.conv_layers}")


@dataclass(frozen=True)
class LSTMConfig:
    hidden_size: int = 256
    num_layers: int = 2
    bidirectional: bool = False
    dropout: float = 0.0  # between layers and before the output layer
    readout: str = "final_state"

    def __post_init__(self):
        _check(self.hidden_size >= 1, f"hidden_size must be >= 1, got {self.hidden_size}")
        _check(self.num_layers >= 1, f"num_layers must be >= 1, got {self.num_layers}")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        _check(self.readout in READOUTS, f"readout must be one of {', '.join(READOUTS)}, got {self.readout!r}")


@dataclass(frozen=True)
class FastTextConfig:
    bigram_buckets: int = 0  # 0 = unigrams only
    dropout: float = 0.0

    def __post_init__(self):
        _check(self.bigram_buckets >= 0, f"bigram_buckets must be >= 0, got {self.bigram_buckets}")
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class LinearConfig:
    """TF-IDF over word n-grams of the store's token ids, then logistic regression (study/train/linear.py).

    One fit is the whole training, reported as one epoch: ``epochs`` above 1 (``study run --max-epochs``
    sets it for every space) changes nothing.
    """
    C: float = 4.0  # inverse L2 regularisation strength of the logistic regression
    ngram_max: int = 2  # n-grams of 1..ngram_max tokens
    min_df: int = 2  # keep n-grams found in at least this many training reviews
    sublinear_tf: bool = True  # 1 + log(tf) instead of the raw count
    nb_scaling: bool = False  # NB-SVM: scale features by their log-count ratio (Wang and Manning 2012)
    nb_alpha: float = 1.0  # smoothing of the log-count ratios
    max_features: int = 0  # keep the most frequent n-grams only; 0 = all

    def __post_init__(self):
        _check(self.C > 0, f"C must be > 0, got {self.C}")
        _check(self.ngram_max >= 1, f"ngram_max must be >= 1, got {self.ngram_max}")
        _check(self.min_df >= 1, f"min_df must be >= 1, got {self.min_df}")
        _check(self.nb_alpha > 0, f"nb_alpha must be > 0, got {self.nb_alpha}")
        _check(self.max_features >= 0, f"max_features must be >= 0, got {self.max_features}")


MODEL_CONFIGS = {"cnn": CNNConfig, "lstm": LSTMConfig, "fasttext": FastTextConfig, "linear": LinearConfig}
# The training keys a linear fit uses; the rest drive the torch trainer's loop and are refused for linear.
LINEAR_TRAIN_KEYS = ("arch", "epochs", "max_len", "seed")


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "cnn"
    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0  # dense parameters only (SparseAdam has none)
    grad_clip: float = 0.0  # max global grad norm; 0 = off
    freeze_embeddings: bool = False
    embedding: str = ""  # the store's embedding kind (word2vec, fasttext, random, ...); "" = its default kind
    shuffle: bool = True
    length_buckets: bool = True  # sort shuffled rows by length in chunks (fewer pads); the original loop did not
    padding: str = "post"
    max_len: int = 0  # 0 = no truncation; else keep the first max_len tokens
    faithful: bool = False  # the original study's mistakes, see trainer.py; implies the next two
    pad_to_longest: bool = False  # pad every batch to the store's longest review (after max_len)
    softmax_loss: bool = False  # softmax before CrossEntropyLoss (the original study's mistake)
    seed: int = 0
    model: CNNConfig | LSTMConfig | FastTextConfig | LinearConfig = field(default_factory=CNNConfig)

    def __post_init__(self):
        _check(self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        _check(isinstance(self.model, MODEL_CONFIGS[self.arch]), f"model config does not match arch {self.arch}")
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.optimizer in ("adam", "adamw"), f"optimizer must be adam or adamw, got {self.optimizer!r}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.grad_clip >= 0, f"grad_clip must be >= 0, got {self.grad_clip}")
        _check(self.padding in ("post", "pre"), f"padding must be post or pre, got {self.padding!r}")
        _check(self.max_len >= 0, f"max_len must be >= 0, got {self.max_len}")
        # the store says which kinds it holds (load names them); here only the shape of the word
        _check(self.embedding == "" or (self.embedding.replace("_", "").isalnum() and self.embedding.islower()),
               f"embedding must be an embedding kind such as word2vec, fasttext or random, got {self.embedding!r}")

    @classmethod
    def from_flat(cls, flat: dict) -> "TrainConfig":
        flat = dict(flat)
        arch = flat.get("arch", cls.arch)
        _check(arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
        train_keys = {f.name for f in fields(cls)} - {"model"}
        model_cls = MODEL_CONFIGS[arch]
        model_keys = {f.name for f in fields(model_cls)}
        train_kw, model_kw = {}, {}
        for key, value in flat.items():
            if arch == "linear" and key in train_keys and key not in LINEAR_TRAIN_KEYS:
                raise ValueError(f"config key {key!r} does not apply to linear (it takes "
                                 f"{', '.join(LINEAR_TRAIN_KEYS[1:])} and its own keys)")
            if key in train_keys:
                train_kw[key] = _coerce(cls, key, value)
            elif key in model_keys:
                model_kw[key] = _coerce(model_cls, key, value)
            else:
                other = [a for a, c in MODEL_CONFIGS.items() if key in {f.name for f in fields(c)}]
                where = f" (a key of {', '.join(other)}, not {arch})" if other else ""
                raise ValueError(f"unknown config key {key!r}{where}")
        return cls(model=model_cls(**model_kw), **train_kw)

    def to_flat(self) -> dict:
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"
                and (self.arch != "linear" or f.name in LINEAR_TRAIN_KEYS)}
        for f in fields(self.model):
            value = getattr(self.model, f.name)
            flat[f.name] = ",".join(map(str, value)) if f.name == "widths" else value
        return flat

    # ``faithful`` switches on every mistake of the original study at once; these are the one place that
    # says what it implies, for the trainer and the models alike.
    @property
    def embedding_kind(self) -> str | None:
        """The kind to load from the store (``data_prep.store.load(uri, embedding=...)``); None = its default."""
        return self.embedding or None

    @property
    def pads_to_longest(self) -> bool:
        return self.faithful or self.pad_to_longest

    @property
    def softmax_before_loss(self) -> bool:
        return self.faithful or self.softmax_loss

    @property
    def dense_embedding_updates(self) -> bool:
        """One dense Adam over the embedding too (the original), instead of sparse rows + SparseAdam."""
        return self.faithful

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some flat keys changed (validated again)."""
        return TrainConfig.from_flat({**self.to_flat(), **changes})


def _field_type(cls, key: str):
    """The declared type of a field, resolved (annotations are strings under ``from __future__``)."""
    return typing.get_type_hints(cls)[key]


def _coerce(cls, key: str, value):
    """Convert a value to the declared field type; YAML and CLI strings land here too."""
    kind = _field_type(cls, key)
    try:
        if key == "widths":
            return _widths(value)
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                _check(lowered in ("true", "false", "1", "0", "yes", "no"), "not a boolean")
                return lowered in ("true", "1", "yes")
            _check(isinstance(value, (bool, int)) and value in (0, 1), "not a boolean")
            return bool(value)
        if kind is int:
            _check(not isinstance(value, bool) and float(value) == int(float(value)), "not an integer")
            return int(float(value))
        if kind is float:
            _check(not isinstance(value, bool), "not a number")
            return float(value)
        _check(kind is str, f"no conversion for type {kind}")
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config key {key!r}: cannot use {value!r} ({exc})") from None
