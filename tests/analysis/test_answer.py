"""The answer section: the winner at each training budget against the best other architecture, with the
paired test of their predictions, and published anchors only for a corpus that has them."""
import numpy as np
import pandas as pd

from study.analysis import answer

N = 400  # test reviews


def _configs(rows) -> pd.DataFrame:
    frame = pd.DataFrame([{"trial_id": t, "arch": a, "val_acc": v, "test_acc": te, "train_time_s": s,
                           "status": "TERMINATED", "n_runs": 1, "run_ids": [t], "test_acc_ci95": 0.04,
                           "below_constant": False} for t, a, v, te, s in rows])
    return frame


def _predictions(accuracy_by_trial: dict[str, float]) -> dict:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, N)
    out = {}
    for trial, acc in accuracy_by_trial.items():
        right = rng.random(N) < acc
        out[trial] = {"test_rows": np.arange(N), "test_labels": labels,
                      "test_preds": np.where(right, labels, 1 - labels)}
    return out


def test_each_front_point_meets_the_best_other_architecture_within_its_budget():
    configs = _configs([("f1", "fasttext", 0.80, 0.80, 5.0), ("f2", "fasttext", 0.84, 0.83, 20.0),
                        ("c1", "cnn", 0.83, 0.82, 15.0), ("c2", "cnn", 0.90, 0.90, 300.0),
                        ("l1", "lstm", 0.70, 0.70, 400.0)])
    rows = answer.cost_ladder(configs, _predictions({"f1": 0.80, "f2": 0.83, "c1": 0.82, "c2": 0.97}))
    assert [(r["budget"], r["winner"]["trial_id"]) for r in rows] == [(5.0, "f1"), (15.0, "c1"), (20.0, "f2"),
                                                                      (300.0, "c2")]
    assert rows[0]["other"] is None and rows[0]["test"] is None        # nothing else trains in 5 s
    assert rows[1]["other"]["trial_id"] == "f1"                      # cnn c1 vs fasttext within 15 s
    assert rows[2]["other"]["trial_id"] == "c1"
    assert rows[3]["other"]["trial_id"] == "f2"                      # lstm l1 costs more than 300 s
    big = rows[3]["test"]
    assert big["p"] < 0.05 and big["diff"] > 0.1                   # 0.97 vs 0.83 on 400 reviews
    md = "\n".join(answer.ladder_markdown(rows))
    assert "lead distinguishable from noise" in md and "no other architecture trains within" in md


def test_a_missing_prediction_file_is_said_not_hidden():
    configs = _configs([("f1", "fasttext", 0.80, 0.80, 5.0), ("c1", "cnn", 0.83, 0.82, 15.0)])
    rows = answer.cost_ladder(configs, {})
    assert rows[1]["test"]["p"] is None
    md = "\n".join(answer.ladder_markdown(rows))
    assert "+2.0 points; no paired test (predictions missing): the 95% intervals overlap" in md
    apart = answer.ladder_markdown(answer.cost_ladder(configs.assign(test_acc_ci95=0.005), {}))
    assert "the 95% intervals do not overlap" in "\n".join(apart)


def test_anchors_only_for_their_corpus_with_the_splits_caveat():
    configs = _configs([("f1", "fasttext", 0.88, 0.885, 5.0), ("c1", "cnn", 0.86, 0.87, 15.0)])
    imdb = {"source": {"name": "imdb"}, "counts": {"train": 18000, "valid": 2000, "test": 5000}}
    md = "\n".join(answer.anchors_markdown(configs, imdb))
    assert "0.912" in md and "0.889" in md                        # NBSVM bigrams, Maas et al.
    assert "fasttext `f1`" in md and "18,000 train" in md and "5,000 test" in md
    assert answer.anchors_markdown(configs, {"source": {"name": "table"}}) == []
    assert answer.anchors_markdown(configs, None) == []


def test_consecutive_front_points_of_one_architecture_make_one_range():
    configs = _configs([("f1", "fasttext", 0.80, 0.80, 5.0), ("f2", "fasttext", 0.82, 0.81, 9.0),
                        ("c1", "cnn", 0.85, 0.84, 40.0), ("c2", "cnn", 0.87, 0.86, 90.0)])
    rows = answer.cost_ladder(configs, {})
    assert [(r["low"], r["budget"], r["winner"]["trial_id"]) for r in rows] == [(5.0, 9.0, "f2"),
                                                                               (40.0, 90.0, "c2")]
    assert rows[1]["other"]["trial_id"] == "f2"
    assert "| 5-9 | fasttext `f2`" in "\n".join(answer.ladder_markdown(rows))
