"""``python -m study train``: one configuration on one store, no Ray; a line per epoch, then a JSON line.

    python -m study train --store /tmp/imdb1k --preset cnn_original --epochs 2 [--set lr=0.002] [--set embedding=fasttext] [--checkpoint-dir D]
"""
from __future__ import annotations

import json
import sys

import torch

from data_prep import store as store_mod
from study.errors import reported_as_usage
from study.train.presets import resolve_config
from study.train.trainer import load_checkpoint, resolve_device, save_checkpoint, train


def add_arguments(parser) -> None:
    parser.add_argument("--store", required=True, help="store folder or URI")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", help="a name from study/train/presets.py")
    source.add_argument("--config", help="YAML file of flat keys (may hold `preset: NAME`)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--checkpoint-dir", help="save checkpoint.pt here after every epoch")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")


def main(args) -> int:
    with reported_as_usage(ValueError, store_mod.StoreError, FileNotFoundError, RuntimeError):
        cfg = resolve_config(preset_name=args.preset, config_path=args.config, sets=args.set,
                             epochs=args.epochs)
        store = store_mod.load(args.store, embedding=cfg.embedding_kind)
        resume = None
        if args.resume:
            if not args.checkpoint_dir:
                raise ValueError("--resume needs --checkpoint-dir")
            resume = load_checkpoint(args.checkpoint_dir)
            saved = {k: v for k, v in resume.get("config", {}).items() if k != "epochs"}
            if saved != {k: v for k, v in cfg.to_flat().items() if k != "epochs"}:
                raise ValueError("the checkpoint was written for a different config")
        device = resolve_device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda, but no CUDA device is available")

    def on_epoch(metrics, get_state):
        if args.checkpoint_dir:
            save_checkpoint(get_state(), args.checkpoint_dir)

    history = train(cfg, store, device=device, threads=args.threads, resume=resume, on_epoch=on_epoch,
                    log=lambda line: print(line, flush=True))
    print(json.dumps({"config": cfg.to_flat(), "store": store.content_hash, "metrics": history[-1]}),
          file=sys.stdout, flush=True)
    return 0
