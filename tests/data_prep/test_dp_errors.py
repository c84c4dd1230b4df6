"""Bad input: one clear error (exit code 2 from the CLI, no traceback) and nothing left behind."""
from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest

from data_prep.sources import PrepError


def assert_clean_failure(result: subprocess.CompletedProcess, needle: str, out_dir) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert not out_dir.exists()
    assert not [p for p in out_dir.parent.iterdir() if ".tmp-" in p.name]


# ------------------------------------------------------------------------------- through the real CLI

def test_cli_missing_input(tmp_path, run_cli):
    out = tmp_path / "store"
    assert_clean_failure(run_cli("build", "--source", "yelp", "--input", tmp_path / "nope.json",
                                 "--out", out), "input not found", out)


def test_cli_unknown_source(tmp_path, run_cli):
    out = tmp_path / "store"
    assert_clean_failure(run_cli("build", "--source", "twitter", "--out", out), "unknown source", out)


def test_cli_negative_vector_size(tmp_path, run_cli):
    out = tmp_path / "store"
    assert_clean_failure(run_cli("build", "--vector-size", "-5", "--out", out), "--vector-size", out)


def test_cli_binary_input(tmp_path, run_cli):
    data = tmp_path / "review.json"
    data.write_bytes(bytes(range(256)) * 64)
    out = tmp_path / "store"
    assert_clean_failure(run_cli("build", "--source", "yelp", "--input", data, "--out", out), "binary", out)


def test_cli_argparse_errors_are_one_line(tmp_path, run_cli):
    out = tmp_path / "store"
    assert_clean_failure(run_cli("build", "--per-class", "many", "--out", out), "invalid int value", out)


@pytest.mark.parametrize("spec, needle", [
    ("glove", "unknown embedding kind 'glove' in --embeddings; expected one of word2vec, fasttext, random"),
    ("", "--embeddings is empty"),
    ("word2vec,fasttext,word2vec", "--embeddings lists 'word2vec' more than once"),
])
def test_cli_bad_embeddings(tmp_path, run_cli, spec, needle):
    out = tmp_path / "store"
    assert_clean_failure(run_cli("build", "--embeddings", spec, "--out", out), needle, out)


# --------------------------------------------------------------------------------------- in-process

def expect_error(tmp_path, build_small, needle: str, **params) -> None:
    out = tmp_path / "store"
    with pytest.raises(PrepError, match=needle):
        build_small(out, **params)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def write_lines(path, lines) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def yelp_lines(n=60, **override):
    texts = ["The pasta was cold and the waiter ignored us.", "Decent coffee, slow service, fine overall.",
             "Best tacos in town, friendly staff and quick!"]
    return [json.dumps({"review_id": f"r{i}", "stars": [1, 3, 5][i % 3], "text": texts[i % 3], **override})
            for i in range(n)]


def test_empty_input(tmp_path, build_small):
    (tmp_path / "review.json").write_text("")
    expect_error(tmp_path, build_small, "input is empty", source="yelp", input=str(tmp_path / "review.json"))


def test_not_json(tmp_path, build_small):
    path = write_lines(tmp_path / "review.json", ["I liked it a lot, five stars."] * 50)
    expect_error(tmp_path, build_small, "not JSON objects", source="yelp", input=path)


def test_mostly_not_json_with_a_few_good_lines(tmp_path, build_small):
    path = write_lines(tmp_path / "review.json", yelp_lines(5) + ["garbage {"] * 300)
    expect_error(tmp_path, build_small, "not JSON objects", source="yelp", input=path)


def test_missing_stars_field(tmp_path, build_small):
    lines = [json.dumps({"review_id": "a", "text": "good food"})] * 30
    expect_error(tmp_path, build_small, "lack the field.*stars", source="yelp",
                 input=write_lines(tmp_path / "review.json", lines))


def test_missing_text_field(tmp_path, build_small):
    lines = [json.dumps({"review_id": "a", "stars": 4})] * 30
    expect_error(tmp_path, build_small, "lack the field.*text", source="yelp",
                 input=write_lines(tmp_path / "review.json", lines))


@pytest.mark.parametrize("stars", [0, 6, 3.5, "five"])
def test_stars_outside_1_to_5(tmp_path, build_small, stars):
    lines = yelp_lines(30)
    lines[17] = json.dumps({"stars": stars, "text": "odd rating"})
    expect_error(tmp_path, build_small, "line 18: stars must be 1-5", source="yelp",
                 input=write_lines(tmp_path / "review.json", lines))


def test_only_empty_texts(tmp_path, build_small):
    expect_error(tmp_path, build_small, "non-empty text", source="yelp",
                 input=write_lines(tmp_path / "review.json", yelp_lines(30, text="   ")))


def test_single_class(tmp_path, build_small):
    expect_error(tmp_path, build_small, "only one class", source="yelp",
                 input=write_lines(tmp_path / "review.json", yelp_lines(30, stars=5)))


def test_per_class_larger_than_a_class(tmp_path, build_small):
    expect_error(tmp_path, build_small, "--per-class 21 is larger than class", source="yelp", per_class=21,
                 input=write_lines(tmp_path / "review.json", yelp_lines(60)))


def test_table_missing_text_column(tmp_path, build_small):
    path = tmp_path / "t.csv"
    pd.DataFrame({"body": ["nice", "bad"], "label": [1, 0]}).to_csv(path, index=False)
    expect_error(tmp_path, build_small, "no text column 'text'.*body", source="table", input=str(path))


def test_table_missing_label_column(tmp_path, build_small):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"text": ["nice", "bad"], "rating": [1, 0]}).to_parquet(path)
    expect_error(tmp_path, build_small, "no label column 'label'", source="table", input=str(path))


def test_not_a_parquet_table(tmp_path, build_small):
    path = tmp_path / "t.parquet"
    path.write_text("text,label\nnice,1\n")
    expect_error(tmp_path, build_small, "not a Parquet file", source="table", input=str(path))


def test_jsonl_table_that_is_not_json(tmp_path, build_small):
    path = write_lines(tmp_path / "t.jsonl", ["text,label", "nice,1"])
    expect_error(tmp_path, build_small, "not a readable JSONL table", source="table", input=path)


def test_binary_csv(tmp_path, build_small):
    path = tmp_path / "t.csv"
    path.write_bytes(b"text,label\n\x00\x01\x02\xff" * 100)
    expect_error(tmp_path, build_small, "binary", source="table", input=str(path))


def test_unknown_table_extension(tmp_path, build_small):
    path = write_lines(tmp_path / "t.xlsx", ["x"])
    expect_error(tmp_path, build_small, "cannot tell the table format", source="table", input=path)


def test_label_map_errors(tmp_path, build_small):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["nice film", "bad film"] * 20, "label": [5, 1] * 20}).to_csv(path, index=False)
    expect_error(tmp_path, build_small, "not RAW=CLASS", source="table", input=str(path), label_map="5:pos")
    expect_error(tmp_path, build_small, "no label matches", source="table", input=str(path),
                 label_map="a=pos,b=neg")


@pytest.mark.parametrize("params, needle", [
    (dict(vector_size=-1), "--vector-size must be at least 1"),
    (dict(test_size=1.0), "--test-size must lie strictly between 0 and 1"),
    (dict(test_size=0.0), "--test-size"),
    (dict(valid_size=-0.1), "--valid-size"),
    (dict(window=0), "--window"),
    (dict(sg=2), "--sg"),
    (dict(w2v_on="test"), "--w2v-on"),
    (dict(per_class=0), "--per-class must be a positive integer"),
    (dict(max_len=-3), "--max-len"),
    (dict(source="yelp"), "needs --input"),
    (dict(input="x.csv"), "takes no --input"),
    (dict(source="nope"), "unknown source"),
    (dict(embeddings="word2vec,glove"), "unknown embedding kind 'glove'"),
    (dict(embeddings=()), "--embeddings is empty"),
])
def test_nonsense_parameters(tmp_path, build_small, params, needle):
    expect_error(tmp_path, build_small, needle, **params)


def test_out_is_a_foreign_folder(tmp_path, build_small):
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("do not delete me")
    with pytest.raises(PrepError, match="holds no store"):
        build_small(out, source="imdb", per_class=10, force=True)
    assert (out / "notes.txt").read_text() == "do not delete me"


def test_unreadable_store_needs_force(tmp_path, review_csv, build_small):
    out = tmp_path / "store"
    out.mkdir()
    (out / "manifest.json").write_text('{"schema_version": 0}')  # a store from another code version
    kw = dict(source="table", input=review_csv, text_col="review", label_col="sentiment", per_class=10)
    with pytest.raises(PrepError, match="--force"):
        build_small(out, **kw)
    manifest, reused = build_small(out, **kw, force=True)
    assert not reused and manifest["schema_version"] == 1
