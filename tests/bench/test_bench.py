"""Bench: whole training steps timed, the original study's loops, the suite's table; on a real small store."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from data_prep import store as store_mod
from study.bench.flops import matmul_rate, train_flops
from study.bench.original_loops import original_loop
from study.bench.suite import format_suite, suite
from study.bench.throughput import bench
from study.bench.user_loops import embedding_bag_loop, kim_conv1d_loop
from study.train.config import TrainConfig
from study.train.presets import preset

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
    flops = train_flops(cfg, dim=store.embeddings.shape[1], num_classes=store.num_classes)
    expected = flops.total(tokens=result["tokens_per_s"], samples=result["samples_per_s"]) / 1e9
    assert result["model_gflops"] == pytest.approx(expected)
    assert result["cpu_seconds"] > 0 and result["model_gflop_per_cpu_s"] > 0


def test_flops_follow_the_config():
    lstm = TrainConfig.from_flat(preset("lstm_original"))
    # 2x256 over 500-d: 3 x 2 x 4H x (I + H) per layer, the figure the original study's benchmark quoted.
    assert train_flops(lstm, dim=500, num_classes=2).per_token == pytest.approx(7.79e6, rel=1e-3)
    frozen = lstm.replace(freeze_embeddings=True)
    assert train_flops(lstm, dim=500, num_classes=2).per_token - train_flops(frozen, dim=500, num_classes=2).per_token \
        == 2 * 4 * 256 * 500  # no input gradient into a frozen embedding
    assert train_flops(lstm, dim=300, num_classes=2).per_token < train_flops(lstm, dim=500, num_classes=2).per_token
    kim = TrainConfig.from_flat(preset("cnn_kim"))
    assert train_flops(kim, dim=300, num_classes=2).per_token == 3 * 2 * 300 * (3 + 4 + 5) * 100
    deep = kim.replace(conv_layers=2, filters=64)
    assert train_flops(deep, dim=300, num_classes=2).per_token == 3 * 2 * (300 + 64) * 12 * 64
    bigrams = TrainConfig.from_flat(preset("fasttext_bigrams"))
    assert train_flops(bigrams, dim=300, num_classes=2).per_token == 2 * train_flops(
        TrainConfig.from_flat(preset("fasttext")), dim=300, num_classes=2).per_token


def test_matmul_rate_is_measured():
    rate = matmul_rate(n=128, seconds=0.03)
    assert rate["gflops"] > 0 and rate["gflop_per_cpu_s"] > 0 and rate["n"] == 128


def test_user_loops_time_whole_steps(store):
    kim = kim_conv1d_loop(store, samples=8, batch_size=4)
    bag = embedding_bag_loop(store, samples=8, batch_size=4)
    for result in (kim, bag):
        assert result["samples"] == 8 and result["samples_per_s"] > 0
        assert result["tokens_per_s"] == pytest.approx(result["samples_per_s"] * result["seq_len_mean"])
    assert kim["padded_len_mean"] >= kim["seq_len_mean"]


@pytest.mark.parametrize("arch,batch", [("cnn", 1), ("lstm", 4)])
def test_original_loop_pads_to_the_longest_review(store, arch, batch):
    result = original_loop(arch, store, samples=4, batch_size=batch)
    assert result["samples_per_s"] > 0 and result["samples"] == 4
    assert result["padded_len"] == int(store.lengths.max())


def test_suite_reports_each_target(store):
    result = suite(store, scale=0.02, rounds=1)
    assert {"cnn f64 x1 frozen", "cnn f256 x2 tuned", "cnn_kim", "kim_conv1d_loop", "lstm_original", "lstm h32 x1",
            "fasttext", "fasttext_bigrams", "embedding_bag_loop", "original_lstm_b32"} <= set(result["runs"])
    checks = {c["what"]: c for c in result["checks"]}
    assert checks["cnn f128 x2 frozen of matmul"]["target"] == 0.6
    assert checks["fasttext_bigrams cost / fasttext"]["op"] == "<="
    assert checks["lstm_original of matmul"]["value"] == pytest.approx(
        result["runs"]["lstm_original"]["model_gflops"] / result["matmul_gflops"])
    table = format_suite(result)
    assert "cnn_kim / kim_conv1d_loop" in table and "GFLOP/s" in table and "load average" in table


def test_cli_bench_json_is_the_last_line(synthetic_store):
    out = subprocess.run([sys.executable, "-m", "study", "bench", "--store", synthetic_store, "--preset",
                          "lstm_fixed", "--samples", "16", "--batch-size", "8", "--threads", "1", "--device", "cpu", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert REQUIRED <= set(result) and result["preset"] == "lstm_fixed" and result["threads"] == 1
    assert result["batch_size"] == 8 and result["device"] == "cpu"
    assert result["of_matmul"] == pytest.approx(result["model_gflops"] / result["matmul_gflops"])


def test_cli_bench_bad_preset_exit_2(synthetic_store, capsys):
    from study.__main__ import main
    assert main(["bench", "--store", synthetic_store, "--preset", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err


def test_cli_bench_profile_prints_the_top_operators(synthetic_store):
    out = subprocess.run([sys.executable, "-m", "study", "bench", "--store", synthetic_store, "--preset", "fasttext",
                          "--samples", "16", "--batch-size", "8", "--threads", "1", "--profile", "3"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Self CPU" in out.stdout and json.loads(out.stdout.strip().splitlines()[-1])["preset"] == "fasttext"


def test_cli_bench_plain_route_times_the_conv1d_route(synthetic_store):
    """--plain-route swaps the CPU route (tap_conv for a deep CNN's first layer) for the plain one, same config."""
    def profiled(*extra):
        out = subprocess.run([sys.executable, "-m", "study", "bench", "--store", synthetic_store, "--preset", "cnn_kim",
                              "--set", "conv_layers=2", "--set", "filters=8", "--samples", "16", "--batch-size", "8",
                              "--threads", "1", "--profile", "200", *extra], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout, json.loads(out.stdout.strip().splitlines()[-1])
    (taps, fast), (plain, slow) = profiled(), profiled("--plain-route")
    assert "_TapConv" in taps and "_TapConv" not in plain
    assert fast["mflop_per_token"] == slow["mflop_per_token"]
