"""Named flat configs: the original study's architectures, the usual baselines, and its loops reproduced.

    from study.train.presets import preset, resolve_config
    cfg = resolve_config(preset_name="lstm_fixed", sets=["hidden_size=128"], epochs=2)

``*_original`` presets are the original study's *architectures* (docs/original-study.md, section 1) trained
the fast, correct way (bucketed batches, raw logits into the loss, sparse embedding updates); ``*_faithful``
presets add its mistakes (``faithful=True``: softmax before CrossEntropyLoss, padding to the longest
review, dense Adam) and its batch sizes, to reproduce its table exactly. The LSTM presets keep its
``last_step`` readout over post-padding except ``lstm_fixed``, which reads each review's true final state.
Earlier names (``cnn_seed``, ``lstm_seed``, ...) still resolve, through ``ALIASES``.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from study.train.config import TrainConfig

_CNN_ORIGINAL = {"arch": "cnn", "widths": "1,2,3,5", "filters": 10, "activation": "tanh", "dropout": 0.0,
             "conv_layers": 1, "freeze_embeddings": False, "lr": 1e-3, "padding": "post"}
_LSTM_ORIGINAL = {"arch": "lstm", "hidden_size": 256, "num_layers": 2, "bidirectional": False, "dropout": 0.0,
              "readout": "last_step", "padding": "post", "freeze_embeddings": False, "lr": 1e-3}

# The original study's loops: its mistakes (see TrainConfig.faithful), and batches of rows in shuffled order
# (it never sorted reviews by length).
_FAITHFUL = {"faithful": True, "length_buckets": False}

PRESETS: dict[str, dict] = {
    "cnn_original": {**_CNN_ORIGINAL, "batch_size": 64, "epochs": 10},
    "cnn_kim": {"arch": "cnn", "widths": "3,4,5", "filters": 100, "activation": "relu", "dropout": 0.5,
                "conv_layers": 1, "freeze_embeddings": False, "lr": 1e-3, "batch_size": 50, "epochs": 10},
    "lstm_original": {**_LSTM_ORIGINAL, "batch_size": 64, "epochs": 5},
    "lstm3_original": {**_LSTM_ORIGINAL, "num_layers": 3, "batch_size": 64, "epochs": 10},
    "lstm_fixed": {**_LSTM_ORIGINAL, "readout": "final_state", "batch_size": 64, "epochs": 5, "grad_clip": 1.0},
    "lstm_bi_max": {**_LSTM_ORIGINAL, "bidirectional": True, "readout": "max", "hidden_size": 128,
                    "batch_size": 64, "epochs": 5, "grad_clip": 1.0},
    "fasttext": {"arch": "fasttext", "bigram_buckets": 0, "dropout": 0.0, "lr": 5e-3, "batch_size": 32,
                 "epochs": 10, "freeze_embeddings": False},
    "fasttext_bigrams": {"arch": "fasttext", "bigram_buckets": 20000, "dropout": 0.0, "lr": 5e-3,
                         "batch_size": 32, "epochs": 10, "freeze_embeddings": False},
    # No network: TF-IDF over word and bigram ids + logistic regression (linear.py), one fit.
    "linear": {"arch": "linear", "C": 4.0, "ngram_max": 2, "min_df": 2, "sublinear_tf": True,
               "nb_scaling": False, "epochs": 1},
    "linear_nb": {"arch": "linear", "C": 4.0, "ngram_max": 2, "min_df": 2, "sublinear_tf": True,
                  "nb_scaling": True, "epochs": 1},
    # The original study's table, column by column (docs/original-study.md, section 1).
    "cnn_faithful": {**_CNN_ORIGINAL, **_FAITHFUL, "batch_size": 1, "epochs": 30},
    "lstm_faithful": {**_LSTM_ORIGINAL, **_FAITHFUL, "batch_size": 1, "epochs": 5},
    "lstm_batch_faithful": {**_LSTM_ORIGINAL, **_FAITHFUL, "batch_size": 32, "epochs": 5},
    "lstm3_batch_faithful": {**_LSTM_ORIGINAL, "num_layers": 3, **_FAITHFUL, "batch_size": 32, "epochs": 30},
}


# Names the presets had before "seed" was kept for random seeds only.
ALIASES = {"cnn_seed": "cnn_original", "lstm_seed": "lstm_original", "lstm3_seed": "lstm3_original",
           "cnn_seed_faithful": "cnn_faithful", "lstm_seed_faithful": "lstm_faithful"}


def preset(name: str) -> dict:
    """A copy of a preset's flat dict."""
    name = ALIASES.get(name, name)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return dict(PRESETS[name])


def parse_sets(sets: list[str] | None) -> dict:
    """``["lr=0.01", "widths=3,4,5"]`` -> dict; values are read as YAML scalars, then typed by the config."""
    out = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def load_config_file(path: str) -> dict:
    """A YAML file holding a flat dict; an optional ``preset: NAME`` key starts from that preset."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of flat keys")
    base = preset(data.pop("preset")) if "preset" in data else {}
    return {**base, **data}


def resolve_config(*, preset_name: str | None = None, config_path: str | None = None,
                   sets: list[str] | None = None, epochs: int | None = None) -> TrainConfig:
    """Preset or config file, then ``--set`` overrides, then ``--epochs``; validated."""
    if (preset_name is None) == (config_path is None):
        raise ValueError("give exactly one of --preset or --config")
    flat = preset(preset_name) if preset_name else load_config_file(config_path)
    flat.update(parse_sets(sets))
    if epochs is not None:
        flat["epochs"] = epochs
    return TrainConfig.from_flat(flat)
