"""Command line: build a store from a review corpus, or describe one.

    python -m data_prep build --source imdb --per-class 1000 --max-len 400 --out stores/imdb1k
    python -m data_prep build --source imdb --per-class 1000 --max-len 400 --embeddings word2vec,fasttext,random \\
        --out stores/imdb1k-3emb
    python -m data_prep build --source yelp --input review.json --limit 100000 --per-class 10000 --stem \\
        --out stores/yelp30k
    python -m data_prep build --source table --input reviews.csv --text-col review --label-col rating \\
        --label-map "1=negative,2=negative,3=neutral,4=positive,5=positive" --out stores/mine
    python -m data_prep info stores/imdb1k [--verify]

Progress goes to stderr; the counts per split and class are printed at the end. Bad input or parameters:
one line on stderr, exit code 2, nothing left behind.
"""
from __future__ import annotations

import argparse
import json
import sys

SOURCES = ("imdb", "yelp", "table")  # as in sources.py; not imported so that --help and usage errors are instant
EMBEDDING_KINDS = ("word2vec", "fasttext", "random")  # as in embed.py, for the same reason


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):  # show a default only when there is a real one
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default also prints the whole usage)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    fmt = _Help
    parser = _Parser(prog="python -m data_prep", description=__doc__.split("\n")[0], formatter_class=fmt)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    b = commands.add_parser("build", help="build a store (or reuse an identical one)", formatter_class=fmt)
    b.add_argument("--source", default="imdb", help=f"one of {', '.join(SOURCES)}")
    b.add_argument("--input", help="input file (yelp: review.json; table: .csv/.tsv/.jsonl/.parquet)")
    b.add_argument("--out", required=True, help="store folder to write (local path or file:// URI)")
    b.add_argument("--force", action="store_true", help="replace a store built with other parameters")
    g = b.add_argument_group("reading")
    g.add_argument("--limit", type=int, help="read only the first N lines/rows")
    g.add_argument("--text-col", default="text", help="table: text column")
    g.add_argument("--label-col", default="label", help="table: label column")
    g.add_argument("--label-map", help='raw=class pairs, e.g. "1=negative,2=negative,3=neutral"; '
                                       "rows with other labels are dropped")
    g = b.add_argument_group("balance and split")
    g.add_argument("--per-class", type=int, help="rows per class, drawn at random (default: smallest class)")
    g.add_argument("--test-size", type=float, default=0.3, help="share of each class for test")
    g.add_argument("--valid-size", type=float, default=0.1, help="share of the non-test rows for valid")
    g.add_argument("--seed", type=int, default=15, help="seed for balancing, splitting and embeddings")
    g = b.add_argument_group("tokens")
    g.add_argument("--stem", action="store_true", help="Porter-stem tokens (the blog did)")
    g.add_argument("--max-len", type=int, help="truncate stored sequences to L tokens (default: keep all)")
    g = b.add_argument_group("embeddings (word2vec and fasttext share these settings)")
    g.add_argument("--embeddings", default="word2vec",
                   help=f"comma-separated kinds from {', '.join(EMBEDDING_KINDS)} (fasttext: with subword "
                        "n-grams; random: no pretraining), one table each; store.load gives the first unless asked")
    g.add_argument("--vector-size", type=int, default=500, help="embedding dimensions")
    g.add_argument("--window", type=int, default=3, help="context words on each side")
    g.add_argument("--sg", type=int, default=1, help="1 skip-gram, 0 CBOW")
    g.add_argument("--min-count", type=int, default=1, help="rarer words map to <unk>")
    g.add_argument("--w2v-epochs", type=int, default=5, help="passes over the sentences")
    g.add_argument("--w2v-on", default="train", help="'train' split only, or 'all' (the seed's test leak: "
                                                     "vocabulary and vectors see the test texts)")
    g.add_argument("--workers", type=int, default=0, help="word2vec/fasttext threads; 0 = one per core")

    i = commands.add_parser("info", help="print a store's manifest summary", formatter_class=fmt)
    i.add_argument("store", help="store folder or URI")
    i.add_argument("--verify", action="store_true", help="also load the data and check the content hash")
    i.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    return parser


def _build(args: argparse.Namespace) -> None:
    from data_prep import store as store_mod
    from data_prep.build import BuildParams, build, summary_lines
    fields = {k: v for k, v in vars(args).items() if k != "command"}
    manifest, reused = build(BuildParams(**fields))
    for line in summary_lines(manifest):
        print(line)
    print(f"store {args.out}: vocab {manifest['vocab_size']:,} x {manifest['embedding_dim']} "
          f"({', '.join(store_mod.embedding_kinds(manifest))}), max length {manifest['max_length']}, "
          f"{'reused' if reused else 'built'}")


def _info(args: argparse.Namespace) -> None:
    from data_prep import store as store_mod
    from data_prep.build import summary_lines
    manifest = store_mod.verify(args.store) if args.verify else store_mod.read_manifest(args.store)
    if args.json:
        print(json.dumps(manifest, indent=2, sort_keys=True))
        return
    source = manifest["source"]
    params = manifest["params"]
    print(f"store       {args.store}")
    print("source      " + ", ".join(f"{k}={v}" for k, v in source.items()))
    print(f"classes     {manifest['num_classes']}: {', '.join(manifest['class_names'])}")
    print(f"vocabulary  {manifest['vocab_size']:,} tokens x {manifest['embedding_dim']} dims "
          f"(pad {manifest['pad_id']}, unk {manifest['unk_id']}), max length {manifest['max_length']}")
    files = list(store_mod.embedding_files(manifest).items())  # the default kind first
    print("embeddings  " + ", ".join(f"{kind} ({name}{', default' if i == 0 else ''})"
                                      for i, (kind, name) in enumerate(files)))
    print("params      " + ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}"
                                      for k, v in sorted(params.items()) if v is not None))
    print(f"hashes      content {manifest['content_hash'][:16]}  params {manifest['params_hash'][:16]}"
          + ("  (verified)" if args.verify else ""))
    for line in summary_lines(manifest):
        print(line)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from data_prep.sources import PrepError
    from data_prep.store import StoreError
    try:
        _build(args) if args.command == "build" else _info(args)
    except (PrepError, StoreError) as exc:
        print(f"python -m data_prep: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permission denied: a user problem, not a bug
        print(f"python -m data_prep: error: {exc.strerror or exc} ({exc.filename or ''})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("python -m data_prep: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
