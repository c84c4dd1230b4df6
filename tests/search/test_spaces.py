"""Search-space files: the shipped ones load and cover the study; malformed ones fail naming the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from study.search.spaces import SpaceError, balanced_assignments, load_space, optuna_distributions, parse_space
from study.train.config import ARCHS, NETWORK_ARCHS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "search_spaces").glob("*.yaml"))
KINDS = sorted((ROOT / "search_spaces" / "embedding_kinds").glob("*.yaml"))


def test_shipped_spaces_load_and_cover_the_study():
    spaces = {s.arch: s for s in map(load_space, SHIPPED)}
    assert set(spaces) == set(ARCHS) == {"cnn", "lstm", "fasttext", "linear"}
    searched = set().union(*(s.params for s in spaces.values()))
    for key in ("batch_size", "freeze_embeddings", "lr", "dropout", "filters", "hidden_size",
                "conv_layers", "num_layers"):
        assert key in searched, key
    assert spaces["lstm"].params["readout"].choices == ("last_step", "final_state", "max", "mean")
    assert set(spaces["lstm"].params["bidirectional"].choices) == {True, False}
    for arch in NETWORK_ARCHS:  # frozen vs fine-tuned embeddings for every network
        assert set(spaces[arch].params["freeze_embeddings"].choices) == {True, False}


def test_linear_space_searches_the_baseline_with_one_fit_per_trial():
    space = load_space(ROOT / "search_spaces" / "linear.yaml")
    assert space.fixed["epochs"] == 1  # one report: nothing for early stopping to cut
    # `study run --max-epochs 4` sets the networks' epochs; the one fit keeps its 1 (so ASHA leaves it alone)
    assert space.fixed_with({"epochs": 4, "seed": 3}) == {**space.fixed, "seed": 3, "arch": "linear"}
    cnn = load_space(ROOT / "search_spaces" / "cnn.yaml")
    assert cnn.fixed_with({"epochs": 4})["epochs"] == 4
    assert set(space.params) == {"C", "ngram_max", "min_df", "sublinear_tf", "nb_scaling"}
    assert space.params["C"].log and set(space.params["nb_scaling"].choices) == {True, False}
    dists = optuna_distributions(space)
    assert isinstance(dists["ngram_max"], IntDistribution) and dists["ngram_max"].low == 1


def test_optuna_distributions_keep_types_and_log_scale():
    dists = optuna_distributions(load_space(ROOT / "search_spaces" / "lstm.yaml"))
    assert isinstance(dists["hidden_size"], IntDistribution) and dists["hidden_size"].log
    assert isinstance(dists["lr"], FloatDistribution) and dists["lr"].log
    assert isinstance(dists["readout"], CategoricalDistribution)
    assert "epochs" not in dists  # fixed values are not searched


GOOD = "arch: lstm\nfixed: {epochs: 2}\nsearch:\n  hidden_size: {type: int, low: 8, high: 64}\n"


@pytest.mark.parametrize("text, key", [
    ("fixed: {}\nsearch: {lr: {type: float, low: 0.1, high: 1}}", "arch"),
    ("arch: rnn\nsearch: {lr: {type: float, low: 0.1, high: 1}}", "arch"),
    ("arch: lstm\nserach: {}", "serach"),
    ("arch: lstm\nsearch: {}", "search"),
    ("arch: lstm\nsearch: {hiden_size: {type: int, low: 8, high: 64}}", "hiden_size"),
    ("arch: cnn\nsearch: {readout: {type: categorical, choices: [max]}}", "readout"),
    ("arch: lstm\nsearch: {hidden_size: {type: int, low: 64, high: 8}}", "search.hidden_size"),
    ("arch: lstm\nsearch: {lr: {type: float, low: 0, high: 0.1, log: true}}", "search.lr.low"),
    ("arch: lstm\nsearch: {lr: {type: float, high: 0.1}}", "search.lr.low"),
    ("arch: lstm\nsearch: {lr: {type: normal, low: 0, high: 1}}", "search.lr"),
    ("arch: lstm\nsearch: {lr: {type: float, low: 0.1, high: 1, choices: [1]}}", "search.lr.choices"),
    ("arch: lstm\nsearch: {readout: {type: categorical, choices: []}}", "search.readout.choices"),
    ("arch: lstm\nsearch: {hidden_size: {type: int, low: 8.5, high: 64}}", "search.hidden_size.low"),
    ("arch: lstm\nfixed: {lr: 0.1}\nsearch: {lr: {type: float, low: 0.1, high: 1}}", "lr"),
    ("arch: lstm\nfixed: {dropout: 1.5}\nsearch: {lr: {type: float, low: 0.1, high: 1}}", "dropout"),
    ("arch: lstm\nsearch: {readout: {type: categorical, choices: [max, sideways]}}", "readout"),
    ("arch: lstm\nsearch: [1, 2]", "search"),
    ("arch: linear\nsearch: {lr: {type: float, low: 0.1, high: 1}}", "lr"),
    ("arch: linear\nsearch: {C: {type: float, low: 0, high: 1, log: true}}", "search.C.low"),
    ("arch: linear\nfixed: {min_df: 0}\nsearch: {C: {type: float, low: 0.1, high: 1}}", "min_df"),
    ("arch: lstm\ncompare: [readout]\nsearch: {lr: {type: float, low: 0.1, high: 1}}", "compare"),
    ("arch: lstm\ncompare: [lr]\nsearch: {lr: {type: float, low: 0.1, high: 1}}", "compare"),
    ("arch: lstm\ncompare: readout\nsearch: {readout: {type: categorical, choices: [max]}}", "compare"),
    ("arch: lstm\nsearch: {embedding: {type: categorical, choices: [Word2Vec]}}", "embedding"),
])
def test_malformed_space_names_the_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    message = str(info.value)
    assert key in message and str(path) in message and "\n" not in message


def test_not_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("arch: [lstm\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(path)
    with pytest.raises(SpaceError, match="cannot read"):
        load_space(tmp_path / "absent.yaml")
    path.write_text(GOOD)
    assert load_space(path).params["hidden_size"].high == 64


def test_cli_rejects_a_malformed_space_with_one_line(synthetic_store, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: cnn\nsearch: {hidden_size: {type: int, low: 8, high: 64}}\n")
    out = subprocess.run([sys.executable, "-m", "study", "run", "--store", synthetic_store, "--space", str(bad),
                          "--name", "x", "--storage-path", str(tmp_path / "exp"), "--num-samples", "1"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 2 and "hidden_size" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "exp" / "x").exists()  # nothing claimed the name


def test_embedding_kind_spaces_search_and_compare_the_three_kinds():
    spaces = {s.arch: s for s in map(load_space, KINDS)}
    assert set(spaces) == {"cnn", "lstm", "fasttext"}
    for space in spaces.values():
        assert space.params["embedding"].choices == ("word2vec", "fasttext", "random")
        assert {"freeze_embeddings", "embedding"} <= set(space.compared)
    assert "readout" in spaces["lstm"].compared


def test_balanced_assignments_share_every_value_equally_at_any_prefix():
    space = parse_space({"arch": "lstm", "compare": ["freeze_embeddings", "embedding", "readout"], "search": {
        "freeze_embeddings": {"type": "categorical", "choices": [True, False]},
        "embedding": {"type": "categorical", "choices": ["word2vec", "fasttext", "random"]},
        "readout": {"type": "categorical", "choices": ["last_step", "final_state", "max", "mean"]},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}})
    sequence = balanced_assignments(space, 48)
    assert all(set(a) == {"freeze_embeddings", "embedding", "readout"} for a in sequence)
    for n in range(1, 49):
        for key, param in space.params.items():
            if key in space.compared:
                counts = [sum(a[key] == c for a in sequence[:n]) for c in param.choices]
                assert max(counts) - min(counts) <= 1, (n, key, counts)
    # 4 trials of a 2-valued and a 4-valued key: frozen meets two readouts, fine-tuned the other two
    pairs = {(a["freeze_embeddings"], a["readout"]) for a in sequence[:8]}
    assert len(pairs) == 8  # after 8 trials every (frozen, readout) pair has been tried
    assert len({tuple(a.values()) for a in sequence[:24]}) >= 20  # few repeats before all 24 are tried
    assert balanced_assignments(space, 5) == sequence[:5]  # a prefix: a resumed study recomputes it
