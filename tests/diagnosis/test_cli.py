"""``study diagnose`` end to end on tiny real stores: the schema, a 3-class store, bad input, Ray = in-process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from data_prep import store as store_mod
from helpers import ray_env, run, study_cmd
from study.__main__ import main as study_main
from study.diagnosis import plan

ROOT = Path(__file__).resolve().parents[2]
RUN_KEYS = {"seed", "val_acc", "test_acc", "best_epoch", "majority_share", "curve", "last_val_acc", "shape"}


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory) -> str:
    """A 3-class store (negative / mixed / positive) from the table script, built by ``--source table``."""
    folder = tmp_path_factory.mktemp("mixed")
    table = folder / "mixed.csv"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "mixed_sentiment_table.py"), "--out", str(table),
                    "--per-class", "50"], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "data_prep", "build", "--source", "table", "--input", str(table),
                    "--vector-size", "16", "--out", str(folder / "store")], check=True, capture_output=True)
    return str(folder / "store")


def diagnose(store: str, out: Path, *extra) -> dict:
    assert study_main(["diagnose", "--store", store, "--out", str(out), "--smoke", "--in-process", *extra]) == 0
    return json.loads((out / "diagnosis.json").read_text())


def test_smoke_writes_every_condition_with_every_seed(imdb_store, tmp_path, capsys):
    report = diagnose(imdb_store, tmp_path / "d")
    assert report["chance"] == 0.5 and isinstance(report["collapsed"], bool)
    seeds = report["settings"]["seeds"]
    assert len(seeds) == 2  # --smoke: 2 seeds
    conditions = [report["baseline"], *report["ablations"], *report["comparison"]["rows"]]
    ran = [c for c in conditions if c["runs"]]
    assert len(ran) == 1 + len(plan.ONE_FACTOR_CHANGES) + len(plan.EXTRAS) + len(plan.COMPARISONS)
    for c in ran:
        assert [r["seed"] for r in c["runs"]] == seeds and all(RUN_KEYS <= set(r) for r in c["runs"])
        assert c["test_acc"] == pytest.approx(sum(r["test_acc"] for r in c["runs"]) / len(seeds))
        assert 0 <= c["recovered_runs"] <= len(seeds)
        assert all(len(r["curve"]) == 2 and r["val_acc"] == max(p["val_acc"] for p in r["curve"])
                   for r in c["runs"])
    assert report["baseline"]["name"] == "lstm_original"
    assert {"prediction_histogram", "logit_spread", "readout_padding", "gradient_by_position",
            "loss_curve"} <= set(report["evidence"])
    assert all("label_auc" in r for r in report["baseline"]["runs"])
    assert report["ablations"][-1]["change"] == "shuffling" and report["ablations"][-1]["runs"] == []
    assert any("2 x 256" in item for item in report["not_tested"])
    s = report["settings"]
    assert s["store_hash"] == store_mod.load(imdb_store).content_hash and s["max_len"] <= 100 and not s["ray"]
    md = (tmp_path / "d" / "diagnosis.md").read_text()
    assert report["root_cause"] in md and "Fixed LSTM vs CNN" in md and "test acc per seed" in md
    assert "[diagnose]" in capsys.readouterr().err  # progress on stderr


def test_mixed_sentiment_table_is_three_balanced_classes_of_sentiment():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from mixed_sentiment_table import mixed_table
    finally:
        sys.path.pop(0)
    table = mixed_table(per_class=40, seed=1)
    assert table["label"].value_counts().to_dict() == {"negative": 40, "mixed": 40, "positive": 40}
    lengths = table["text"].str.split().str.len().groupby(table["label"]).mean()
    assert lengths.max() - lengths.min() < 0.25 * lengths.mean()  # length gives the class away no more than chance
    assert table["text"].is_unique and isinstance(table, pd.DataFrame)


def test_three_classes_chance_is_a_third_everywhere(mixed_store, tmp_path):
    report = diagnose(mixed_store, tmp_path / "d3", "--baseline-only")
    assert report["settings"]["num_classes"] == 3 and report["chance"] == pytest.approx(1 / 3)
    assert report["bar"]["acc"] >= 1 / 3 + 0.05
    md = (tmp_path / "d3" / "diagnosis.md").read_text()
    assert "chance (0.333)" in md and "chance 0.33" in report["root_cause"] and report["root_cause"] in md
    assert "chance 0.50" not in md and "chance (0.500)" not in md


def test_bad_input_is_one_line_exit_2(tmp_path, imdb_store):
    for args in (["--store", str(tmp_path / "nope")], ["--store", imdb_store, "--seeds", "0"]):
        proc = subprocess.run([sys.executable, "-m", "study", "diagnose", *args, "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2
        assert proc.stderr.startswith("study diagnose: error:") and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_ray_tasks_give_the_same_runs_as_in_process(imdb_store, tmp_path):
    """Real Ray (a private local instance): every run is the same as in-process, seed for seed."""
    local = diagnose(imdb_store, tmp_path / "local", "--baseline-only")
    log = tmp_path / "ray.log"
    cmd = study_cmd("diagnose", "--store", imdb_store, "--out", tmp_path / "ray", "--smoke", "--baseline-only")
    assert run(cmd, ray_env(), log, timeout=300) == 0, log.read_text()[-3000:]
    remote = json.loads((tmp_path / "ray" / "diagnosis.json").read_text())
    assert remote["settings"]["ray"] and remote["settings"]["workers"] >= 1

    def curves(report):
        rows = [report["baseline"], *report["comparison"]["rows"]]
        return [[(r["seed"], r["test_acc"], [p["val_acc"] for p in r["curve"]]) for r in c["runs"]] for c in rows]

    assert curves(remote) == curves(local) and remote["root_cause"] == local["root_cause"]


def test_only_the_fanout_imports_ray():
    code = ("import sys\nimport study.diagnosis.command, study.diagnosis.runs\n"
            "print('ray' in {m.split('.')[0] for m in sys.modules})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_sizing_measures_every_condition_and_fits_the_budget(synthetic_store):
    from study.diagnosis import command

    store = store_mod.load(synthetic_store)
    base = plan.baseline_flat(8, 1, 40, 2, 8)
    conds = plan.conditions()
    step_s = command._step_seconds(conds, base, store)
    assert len(step_s) == len(conds) + 1 and all(s > 0 for s in step_s.values())
    sizing = command._size(step_s, base, store, 600, 3, 2)
    assert sizing["rows"] == len(store.indices("train"))  # a tiny store: every row fits
    assert list(sizing["per_row_ms"])[:len(conds)] == [c.name for c in conds]
    assert command._size(step_s, base, store, 0.01, 3, 2)["rows"] == plan.row_ladder(sizing["rows"])[0]


def test_a_rerun_into_the_same_out_reuses_the_measured_step_times(imdb_store, tmp_path, capsys):
    """Sized by the budget (no --smoke): the second run sizes from the first run's step times, so it trains on
    the same rows and repeats the table; another baseline, or --remeasure, measures again."""
    small = ["--in-process", "--seeds", "1", "--epochs", "1", "--hidden-size", "8", "--max-len", "50",
             "--batch-size", "8", "--budget-minutes", "1"]
    out = tmp_path / "d"

    def diagnose_sized(*extra) -> dict:
        assert study_main(["diagnose", "--store", imdb_store, "--out", str(out), *small, *extra]) == 0
        return json.loads((out / "diagnosis.json").read_text())

    first = diagnose_sized()
    sizing = first["settings"]["sizing"]
    assert sizing["measured_here"] and len(sizing["per_row_ms"]) == len(plan.conditions()) + 1
    again = diagnose_sized()
    assert not again["settings"]["sizing"]["measured_here"] and "as measured by the earlier" in capsys.readouterr().err
    assert again["settings"]["sizing"]["per_row_ms"] == sizing["per_row_ms"]
    assert [r["test_acc"] for r in again["baseline"]["runs"]] == [r["test_acc"] for r in first["baseline"]["runs"]]
    assert diagnose_sized("--remeasure")["settings"]["sizing"]["measured_here"]
    assert diagnose_sized("--hidden-size", "12")["settings"]["sizing"]["measured_here"]  # another baseline
