"""Bench: whole training steps timed, the original study's loops, the suite's table; on a real small store."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from data_prep import store as store_mod
from study.bench.throughput import bench, format_suite, suite
from study.train.config import TrainConfig
from study.train.presets import preset
from study.bench.original_loops import original_loop

REQUIRED = {"samples_per_s", "tokens_per_s", "preset", "device", "threads", "batch_size", "seq_len_mean"}


@pytest.fixture(scope="module")
def store(synthetic_store):
    return store_mod.load(synthetic_store)


def test_bench_times_whole_steps(store):
    cfg = TrainConfig.from_flat({**preset("cnn_original"), "batch_size": 16})
    result = bench(cfg, store, samples=40, device="cpu", name="cnn_original")
    assert REQUIRED <= set(result)
    assert result["samples"] >= 40 and result["steps"] == 3 and result["batch_size"] == 16
    assert result["tokens_per_s"] == pytest.approx(result["samples_per_s"] * result["seq_len_mean"])
    assert result["padded_len_mean"] >= result["seq_len_mean"] > 0


@pytest.mark.parametrize("arch,batch", [("cnn", 1), ("lstm", 4)])
def test_original_loop_pads_to_the_longest_review(store, arch, batch):
    result = original_loop(arch, store, samples=4, batch_size=batch)
    assert result["samples_per_s"] > 0 and result["samples"] == 4
    assert result["padded_len"] == int(store.lengths.max())


def test_suite_reports_each_target(store):
    result = suite(store, scale=0.05, rounds=2)
    assert set(result["runs"]) == {"cnn_original", "original_cnn_b1", "lstm_original", "original_lstm_b1", "original_lstm_b32"}
    assert [c["target"] for c in result["checks"]] == [50.0, 6.0, 1.5, 0.5]
    table = format_suite(result)
    assert "cnn_original / original CNN b1" in table and "GFLOP/s" in table


def test_cli_bench_json_is_the_last_line(synthetic_store):
    out = subprocess.run([sys.executable, "-m", "study", "bench", "--store", synthetic_store, "--preset",
                          "lstm_fixed", "--samples", "16", "--batch-size", "8", "--threads", "1", "--device", "cpu", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert REQUIRED <= set(result) and result["preset"] == "lstm_fixed" and result["threads"] == 1
    assert result["batch_size"] == 8 and result["device"] == "cpu"


def test_cli_bench_bad_preset_exit_2(synthetic_store, capsys):
    from study.__main__ import main
    assert main(["bench", "--store", synthetic_store, "--preset", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err
