"""Readers on real text: the bundled IMDB CSV, Yelp-format lines, and CSV/TSV/JSONL/Parquet tables."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from gensim.utils import simple_preprocess

from data_prep import sources
from data_prep.labels import encode_labels
from data_prep.tokens import simple_tokens


def test_imdb_reader_reads_25k_labelled_reviews_without_html():
    corpus = sources.read_source("imdb", None)
    frame = corpus.frame
    assert len(frame) == 25_000
    assert not frame["text"].str.contains("<br", regex=False).any()
    assert corpus.label_map == {"0": "negative", "1": "positive"}
    assert frame["raw_label"].value_counts().to_dict() == {"0": 12_500, "1": 12_500}


def test_imdb_limit_reads_first_rows():
    assert len(sources.read_source("imdb", None, limit=50).frame) == 50


def test_yelp_maps_stars_and_streams_with_limit(yelp_file, yelp_records, imdb_reviews):
    corpus = sources.read_source("yelp", str(yelp_file))
    codes, names, _ = encode_labels(corpus.frame["raw_label"], corpus.label_map)
    assert names == ["negative", "neutral", "positive"]
    stars = np.array([r["stars"] for r in yelp_records])
    expected = np.select([stars <= 2, stars == 3], [0, 1], 2)
    assert np.array_equal(codes, expected)
    texts = corpus.texts(np.array([5, 0, 2]))  # read lazily, in any order
    assert texts.tolist() == [imdb_reviews["text"].iloc[i].strip() for i in (5, 0, 2)]
    assert len(sources.read_source("yelp", str(yelp_file), limit=37).frame) == 37


def test_yelp_skips_and_counts_a_few_malformed_lines(tmp_path, yelp_records):
    lines = [json.dumps(r) for r in yelp_records]
    lines[5] = lines[5][:40]  # truncated line
    lines[9] = "not json at all"
    lines[11] = json.dumps({"review_id": "x", "text": "no stars here"})
    lines[12] = json.dumps({"review_id": "y", "stars": 4, "text": "  "})
    path = tmp_path / "review.json"
    path.write_text("\n".join(lines) + "\n\n")  # a trailing blank line is not counted as malformed
    corpus = sources.read_source("yelp", str(path))
    assert corpus.stats["malformed_lines"] == 2
    assert corpus.stats["incomplete_lines"] == 1
    assert corpus.stats["empty_texts_dropped"] == 1
    assert len(corpus.frame) == len(lines) - 4
    assert corpus.texts(np.array([10])).tolist() == [json.loads(lines[14])["text"].strip()]


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "parquet"])
def test_table_formats_read_the_same_rows(tmp_path, imdb_reviews, kind):
    frame = pd.DataFrame({"body": imdb_reviews["text"], "stars": np.where(imdb_reviews["label"] == 1, 5, 1)})
    path = tmp_path / f"reviews.{kind}"
    if kind == "csv":
        frame.to_csv(path, index=False)
    elif kind == "tsv":
        frame.assign(body=frame["body"].str.replace("\t", " ")).to_csv(path, sep="\t", index=False)
    elif kind == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    corpus = sources.read_source("table", str(path), text_col="body", label_col="stars",
                                 label_map="1=negative,5=positive")
    codes, names, _ = encode_labels(corpus.frame["raw_label"], corpus.label_map)
    assert names == ["negative", "positive"]
    assert np.array_equal(codes, imdb_reviews["label"].to_numpy())
    assert len(corpus.frame) == len(frame)


def test_table_string_labels_and_partial_map(tmp_path, review_csv):
    corpus = sources.read_source("table", review_csv, text_col="review", label_col="sentiment")
    _, names, _ = encode_labels(corpus.frame["raw_label"], corpus.label_map)
    assert names == ["negative", "positive"]
    # A map that names only some labels selects those rows.
    frame = pd.DataFrame({"text": ["good film"] * 3 + ["bad film"] * 3 + ["so so"] * 3,
                          "label": [5] * 3 + [1] * 3 + [3] * 3})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    corpus = sources.read_source("table", str(path), label_map="1=neg,5=pos")
    codes, names, dropped = encode_labels(corpus.frame["raw_label"], corpus.label_map)
    assert names == ["neg", "pos"] and dropped.sum() == 3 and (codes[~dropped] >= 0).all()


def test_numeric_labels_order_numerically():
    _, names, _ = encode_labels(np.array(["10", "2", "1", "2"]), None)
    assert names == ["1", "2", "10"]


def test_empty_texts_are_dropped_and_counted(tmp_path):
    path = tmp_path / "t.jsonl"
    rows = [{"text": "a fine film", "label": 1}, {"text": "   ", "label": 0}, {"text": None, "label": 0},
            {"text": "dull", "label": 0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    corpus = sources.read_source("table", str(path))
    assert corpus.frame["text"].tolist() == ["a fine film", "dull"]
    assert corpus.stats["empty_texts_dropped"] == 2


def test_fast_tokens_equal_gensim_simple_preprocess(imdb_reviews):
    texts = imdb_reviews["text"].tolist() + ["Šéf chomutovských komunistů dostal poštou bílý prášek",
                                             "naïve café _under score x 42abc ÉCOLE", "Kelvin \u212a sign"]
    assert any(not t.isascii() for t in texts)
    for text in texts:
        assert simple_tokens(text) == simple_preprocess(text, deacc=True)


def test_cli_lists_the_same_sources():
    from data_prep.__main__ import SOURCES
    assert SOURCES == sources.SOURCES
