"""The package boundaries hold: reading results needs neither Ray nor torch; training never imports Ray."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from study import experiment
from study.analysis import load

HEAVY = ("ray", "torch", "optuna")
ROOT = Path(__file__).resolve().parents[1]


def imported_after(code: str) -> list[str]:
    """The heavy top-level packages present in sys.modules after running ``code`` in a fresh interpreter."""
    probe = code + f"\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_experiment(storage: Path, name: str, archs=("cnn", "fasttext")) -> None:
    """A finished experiment folder, one trial per entry of ``archs``, as the search writes it."""
    result = {"epoch": 1, "val_acc": 0.8, "test_acc": 0.78, "macro_f1": 0.77, "majority_share": 0.52,
              "pred_hist": [52, 48], "train_time_s": 3.0, "epoch_time_s": 3.0, "samples_per_s": 300.0,
              "params_total": 1000, "params_trainable": 100, "params_no_embedding": 50,
              "max_params_per_layer": 50, "peak_rss_mb": 300.0, "train_loss": 0.5, "val_loss": 0.6}
    trials = [{"trial_id": f"t{i}", "arch": arch, "status": "TERMINATED", "num_failures": 0,
               "config": {"arch": arch, "lr": 0.001 * (i + 1)},
               "last_result": {**result, "val_acc": 0.8 + i / 100}, "error": None}
              for i, arch in enumerate(archs)]
    experiment.write_json(str(storage / name / experiment.TRIALS_FILE), {"trials": trials})


def test_report_reads_results_without_ray_torch_or_optuna(tmp_path):
    write_experiment(tmp_path, "exp")
    code = ("from study.__main__ import main\n"
            f"assert main(['report', '--storage-path', {str(tmp_path)!r}, '--name', 'exp', "
            f"'--out', {str(tmp_path / 'out')!r}]) == 0")
    assert imported_after(code) == []
    assert (tmp_path / "out" / "summary.md").exists()
    assert imported_after("from study.__main__ import main\n"
                          f"main(['status', '--storage-path', {str(tmp_path)!r}, '--name', 'exp'])") == []


def test_report_with_importance_imports_optuna_but_not_ray_or_torch(tmp_path):
    """Enough finished trials of one architecture: fANOVA runs, so Optuna is imported, lazily; Ray and
    torch still are not."""
    write_experiment(tmp_path, "exp", archs=["cnn"] * 4)
    code = ("from study.__main__ import main\n"
            f"assert main(['report', '--storage-path', {str(tmp_path)!r}, '--name', 'exp', "
            f"'--out', {str(tmp_path / 'out')!r}]) == 0")
    assert imported_after(code) == ["optuna"]
    assert "## Which hyperparameters matter" in (tmp_path / "out" / "summary.md").read_text()
    assert (tmp_path / "out" / "importance.png").exists()


def test_dashboard_never_imports_ray_or_torch():
    assert imported_after("import study.analysis.dashboard") == []
    try:
        import optuna_dashboard  # noqa: F401  (the dashboard extra)
    except ImportError:
        return
    assert imported_after("import study.analysis.dashboard, optuna_dashboard") == ["optuna"]


def test_training_never_imports_ray():
    code = "\n".join(f"import study.train.{m}" for m in ("config", "presets", "models", "batches", "metrics",
                                                          "trainer", "command"))
    assert "ray" not in imported_after(code)
    assert "torch" in imported_after(code)  # the probe itself can see an import


def test_load_gives_the_trials_table(tmp_path):
    write_experiment(tmp_path, "exp")
    trials = load(str(tmp_path), "exp")
    assert isinstance(trials, pd.DataFrame) and list(trials["trial_id"]) == ["t0", "t1"]
    assert {"val_acc", "config/lr", "collapsed", "train_s_per_1k_samples"} <= set(trials.columns)
