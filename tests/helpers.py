"""Shared test helpers: a synthetic store, a padding helper, and the process helpers of the real-Ray tests.

Real-Ray helpers: every Ray process a test starts lives in a session of its own (``start_new_session``);
cleanup kills the processes of exactly those sessions, plus any process whose command line names the
test's private Ray temp dir, by pid. Nothing here calls ``ray stop`` or touches ~/.ray.
"""
from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch

from data_prep import store as store_mod


def make_synthetic_store(path, *, per_class=60, num_classes=3, vocab_size=200, dim=16, seed=0,
                         min_len=3, max_len=40) -> str:
    """A learnable store: each class prefers its own block of words; lengths vary widely."""
    rng = np.random.default_rng(seed)
    class_names = [f"class{c}" for c in range(num_classes)]
    words = vocab_size - 2
    block = words // num_classes
    rows, labels, splits = [], [], []
    split_cycle = ["train"] * 6 + ["valid"] + ["test"] * 3
    for label in range(num_classes):
        for i in range(per_class):
            length = int(rng.integers(min_len, max_len + 1))
            own = rng.integers(2 + label * block, 2 + (label + 1) * block, size=length)
            noise = rng.integers(2, vocab_size, size=length)
            ids = np.where(rng.random(length) < 0.5, own, noise).astype(np.int32)
            rows.append(ids)
            labels.append(label)
            splits.append(split_cycle[i % len(split_cycle)])
    order = rng.permutation(len(rows))
    sequences = store_mod.sequences_table([rows[i] for i in order], np.array(labels)[order],
                                          np.array(splits)[order])
    vocab = [store_mod.PAD_TOKEN, store_mod.UNK_TOKEN] + [f"w{i}" for i in range(words)]
    vectors = rng.normal(0, 0.3, size=(vocab_size, dim)).astype(np.float32)
    vectors[0] = 0.0
    store_mod.write_store(str(path), sequences=sequences, vocab=vocab, vectors=vectors,
                          class_names=class_names, source={"name": "synthetic", "seed": seed},
                          params={"per_class": per_class, "dim": dim}, params_hash=f"synthetic-{seed}")
    return str(path)


def build_imdb_store(path, *, per_class: int = 1000) -> str:
    """A small real store from the bundled IMDB reviews (real tokenizer, real gensim), in seconds."""
    from data_prep.build import BuildParams, build

    build(BuildParams(out=str(path), source="imdb", per_class=per_class, max_len=100, vector_size=32,
                      w2v_epochs=2, workers=1), log=lambda _m: None)
    return str(path)


def pad(seqs: list[list[int]], width: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros(len(seqs), width, dtype=torch.int64)
    for i, s in enumerate(seqs):
        if side == "post":
            ids[i, :len(s)] = torch.tensor(s)
        else:
            ids[i, width - len(s):] = torch.tensor(s)
    return ids, torch.tensor([len(s) for s in seqs])


# ---- real Ray: private temp dirs and tokens, sessions, cleanup by pid

TINY_SPACES = {
    "cnn": "arch: cnn\nfixed: {epochs: 1, max_len: 40}\nsearch:\n"
           "  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n"
           "  filters: {type: int, low: 2, high: 4}\n"
           "  freeze_embeddings: {type: categorical, choices: [true, false]}\n",
    "lstm": "arch: lstm\nfixed: {epochs: 1, max_len: 40}\nsearch:\n"
            "  hidden_size: {type: int, low: 4, high: 8}\n"
            "  readout: {type: categorical, choices: [max, mean]}\n",
    "fasttext": "arch: fasttext\nfixed: {epochs: 1, max_len: 40}\nsearch:\n"
                "  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}\n"
                "  dropout: {type: float, low: 0.0, high: 0.3}\n",
}


def write_spaces(folder: Path, arches=("cnn", "lstm", "fasttext")) -> list[str]:
    paths = []
    for arch in arches:
        path = folder / f"tiny_{arch}.yaml"
        path.write_text(TINY_SPACES[arch])
        paths.append(str(path))
    return paths


def ray_env() -> dict:
    """Environment for every Ray process of one test: its own temp dir and auth token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: socket paths max ~107 chars
    atexit.register(shutil.rmtree, temp_dir, True)  # after the session, when its processes are gone
    env.update(RAY_TMPDIR=temp_dir,
               RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0",
               RAY_agent_register_timeout_ms="120000")  # a busy 2-core CI box starts agents slowly
    return env


def study_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "study", *map(str, args)]


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start ``cmd`` in a new session (its own process group) with output to ``log``."""
    handle = open(log, "ab")
    return subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=Path(__file__).resolve().parents[1])  # the repository root


def run(cmd: list[str], env: dict, log: Path, timeout: float) -> int:
    """Run to completion in its own session; whatever it leaves behind is killed afterwards."""
    proc = start(cmd, env, log)
    try:
        return proc.wait(timeout=timeout)
    finally:
        cleanup([proc.pid], env["RAY_TMPDIR"])


def _ours(proc: psutil.Process, sessions: set[int], temp_dir: str) -> bool:
    try:
        if os.getsid(proc.pid) in sessions:
            return True
        return any(temp_dir in part for part in proc.cmdline())
    except (psutil.Error, ProcessLookupError, PermissionError):
        return False


def leftovers(sessions, temp_dir: str) -> list[psutil.Process]:
    me = os.getpid()
    return [p for p in psutil.process_iter() if p.pid != me and _ours(p, set(sessions), temp_dir)]


def cleanup(sessions, temp_dir: str, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL, the processes of ``sessions`` (session ids = leader pids) and temp dir."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs = leftovers(sessions, temp_dir)
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=timeout / 2)
        if not alive:
            break
    for sid in sessions:  # reap our direct children so they do not linger as zombies
        try:
            os.waitpid(sid, os.WNOHANG)
        except ChildProcessError:
            pass
    assert not leftovers(sessions, temp_dir), "Ray processes survived cleanup"


def status_json(storage: Path, name: str, env: dict) -> list[dict]:
    out = subprocess.run(study_cmd("status", "--storage-path", storage, "--name", name, "--json"),
                         env=env, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])["trials"]


def wait_for(predicate, timeout: float, what: str, poll: float = 0.1, proc: subprocess.Popen | None = None):
    """Poll ``predicate`` until it is truthy; fail at once if ``proc`` (the study driver) has exited."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before {what}")
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


# ---- 2-node loopback clusters and study checks shared by the cluster and reliability tests

RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_count(address: str, env: dict) -> int:
    """Alive nodes, asked from a throwaway driver (uses the same token)."""
    code = ("import ray; ray.init(address=%r, log_to_driver=False, configure_logging=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))" % address)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def start_node(env: dict, log: Path, *, head_port: int | None = None, address: str | None = None,
               cpus: int = 1, gpus: int = 0) -> subprocess.Popen:
    """``ray start --block`` for a head (``head_port``) or a worker (``address``), in a session of its own."""
    common = ["--num-cpus", str(cpus), "--num-gpus", str(gpus), "--node-ip-address", "127.0.0.1", "--block",
              "--disable-usage-stats"]
    if head_port:
        cmd = [RAY, "start", "--head", "--port", str(head_port), "--include-dashboard", "false",
               "--temp-dir", f"{env['RAY_TMPDIR']}/head", *common]
    else:
        cmd = [RAY, "start", "--address", address, "--temp-dir", f"{env['RAY_TMPDIR']}/worker", *common]
    return start(cmd, env, log)


def results(storage: Path, name: str) -> list[dict]:
    """Every result line the driver has written so far (one per trial epoch)."""
    from study.search.rebuild import recorded_results

    return [row for path in (storage / name).glob("*/result.json") for row in recorded_results(str(path.parent))]


def assert_exact_study(storage: Path, name: str, env: dict, per_arch: dict[str, int]) -> list[dict]:
    """The study's promises after any fault: exactly ``per_arch`` finished trials, none duplicated, each
    trial's metrics those of its last checkpoint's epoch, and optuna.db consistent with Ray."""
    from collections import Counter

    from study.search.optuna_sync import mismatches
    from study.train import trainer

    trials = status_json(storage, name, env)
    assert Counter(t["arch"] for t in trials) == per_arch, trials
    assert len({t["trial_id"] for t in trials}) == len(trials)
    assert {t["status"] for t in trials} == {"TERMINATED"}, [(t["trial_id"], t["status"]) for t in trials]
    assert len(list((storage / name).glob("*_*/params.json"))) == len(trials)  # no extra trial folders
    for t in trials:
        folders = sorted((storage / name).glob(f"*_{t['trial_id']}/checkpoint_*"))
        assert folders, f"trial {t['trial_id']} has no checkpoint"
        state = trainer.load_checkpoint(folders[-1])
        assert state["epoch"] == t["epochs"], (t["trial_id"], state["epoch"], t["epochs"])
        assert abs(state["history"][-1]["val_acc"] - t["val_acc"]) < 1e-9  # status --json rounds to 10 digits
    assert mismatches(str(storage / name), name) == []
    return trials


# ---- report fixtures

def _trial(i, arch, status, val, test, time_s, params, sps, *, share=0.45, freeze=False, epochs=4,
           repeat_of=None, **config):
    hist = [40, 30, 30] if share < 0.9 else [97, 2, 1]
    row = {"trial_id": f"t{i:03d}", "arch": arch, "status": status, "node_id": "node-a", "gpu_ids": [],
           "epochs": epochs, "epoch": epochs, "val_acc": val, "test_acc": test,
           "macro_f1": None if test is None else test - 0.01, "train_loss": 0.6, "val_loss": 0.7,
           "recall": [0.5, 0.5, 0.5], "pred_hist": hist, "majority_share": share,
           "samples_per_s": sps, "epoch_time_s": None if time_s is None else time_s / epochs,
           "train_time_s": time_s, "params_total": 2_000_000 + params,
           "params_trainable": params + (0 if freeze else 2_000_000), "params_no_embedding": params,
           "max_params_per_layer": params // 2, "peak_rss_mb": 900.0, "device": "cpu", "threads": 2,
           "config/arch": arch, "config/epochs": 10, "config/lr": 1e-3, "config/batch_size": 64,
           "config/freeze_embeddings": freeze, "config/seed": i, "repeat_of": repeat_of,
           "eval_time_s": None if time_s is None else time_s / 10, "infer_ms_per_review": 0.5 + params / 1e5,
           "infer_reviews_per_s": 2000.0 - params / 1e3, "best_epoch": epochs, "seed": 0}
    row.update({f"config/{k}": v for k, v in config.items()})
    return row


def make_frame() -> pd.DataFrame:
    """24 trials of three architectures: collapsed LSTMs, one running, one failed, one pending; then two
    repeats of the best fasttext trial (t020). Test accuracy falls as validation accuracy rises."""
    rows = []
    rng = np.random.default_rng(3)
    for i in range(8):
        acc = 0.78 + 0.09 * rng.random()
        rows.append(_trial(i, "cnn", "TERMINATED", acc, 1.6 - acc, 200 + 250 * i, 6_000 + 40_000 * i,
                           400 - 30 * i, freeze=bool(i % 2), widths="3,4,5" if i % 2 else [1, 2, 3, 5],
                           filters=10 + 20 * i, activation="relu"))
    for i in range(8, 16):
        bad = i < 12
        acc = 0.33 if bad else 0.70 + 0.06 * rng.random()
        rows.append(_trial(i, "lstm", "TERMINATED", acc, acc + (0.005 if bad else -0.02),
                           1500 + 400 * i, 200_000 * (1 + i % 3), 40 + i, share=0.97 if bad else 0.5,
                           hidden_size=64 * (1 + i % 3), num_layers=1 + i % 2, readout="last_step"
                           if bad else "max", freeze=i % 3 == 0))
    for i in range(16, 21):
        acc = 0.80 + 0.01 * (i - 16)
        rows.append(_trial(i, "fasttext", "TERMINATED", acc, 1.62 - acc, 5.0 * (i - 15),
                           1_500 * (i - 15), 20_000 / (i - 15), bigram_buckets=1000 * (i - 16),
                           freeze=True))
    rows.append(_trial(21, "cnn", "RUNNING", 0.99, 0.99, 10.0, 1000, 500, epochs=1, widths="3"))
    err = _trial(22, "lstm", "ERROR", None, None, None, 0, None, epochs=0, hidden_size=256)
    err.update({k: None for k in ("params_total", "params_trainable", "params_no_embedding",
                                  "max_params_per_layer", "pred_hist", "majority_share")})
    rows.append(err)
    rows.append({"trial_id": "t023", "arch": "fasttext", "status": "PENDING", "config/lr": 0.01})
    for i, acc in ((24, 0.83), (25, 0.85)):       # t020's repeats: its runs' mean val_acc stays 0.84
        rows.append(_trial(i, "fasttext", "TERMINATED", acc, 1.62 - acc, 25.0, 7_500, 4_000,
                           bigram_buckets=4000, freeze=True, repeat_of="t020"))
    return pd.DataFrame(rows)
