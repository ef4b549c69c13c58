"""Task presets and fixed samples from local files in GLUE / SQuAD shapes (no network)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from transformers import AutoTokenizer

from _tiny_tokenizer import EOS, byte_level_bpe
from repdrift.errors import InputError
from repdrift.tasks.encoding import encode
from repdrift.tasks.presets import PRESETS, TaskSpec
from repdrift.tasks.samples import CUSTOM_MAX_LENGTH, Samples, choose_rows, load_samples
from repdrift.tasks.splits import file_part

WORDS = "the a film movie was is great awful slow bright dull plot acting story".split()


def _sentence(rng: np.random.Generator, n_words: int) -> str:
    return " ".join(rng.choice(WORDS, size=n_words))


def glue_single(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sentence": [_sentence(rng, int(rng.integers(3, 12))) for _ in range(n)],
            "label": rng.integers(0, 2, size=n),
            "idx": np.arange(n) + 1000,
        }
    )


def glue_pair(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sentence1": [_sentence(rng, int(rng.integers(3, 12))) for _ in range(n)],
            "sentence2": [_sentence(rng, int(rng.integers(3, 12))) for _ in range(n)],
            "label": rng.integers(0, 2, size=n),
            "idx": np.arange(n),
        }
    )


def squad(n: int, seed: int = 0, context_words: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"56ddde6b9a695914005b{i:04x}" for i in range(n)],
            "title": ["Normans"] * n,
            "question": [_sentence(rng, 6) + "?" for _ in range(n)],
            "context": [_sentence(rng, context_words) for _ in range(n)],
            "answers": [{"text": ["film"], "answer_start": [4]} for _ in range(n)],
        }
    )


def write(df: pd.DataFrame, path: Path) -> Path:
    """Write a frame in the format the suffix names (save_to_disk for a suffix-less folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    elif path.suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif path.suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    elif path.suffix == ".json":
        path.write_text(json.dumps(df.to_dict(orient="records")))
    elif path.suffix == ".parquet":
        df.to_parquet(path, index=False)
    else:
        datasets.Dataset.from_pandas(df, preserve_index=False).save_to_disk(str(path))
    return path


@pytest.fixture(scope="module")
def bert_tok(minilm_path: Path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture(scope="module")
def decoder_tok(tmp_path_factory: pytest.TempPathFactory):
    """A GPT-2-style byte-level BPE tokenizer: no pair template, eos but no pad or sep."""
    folder = tmp_path_factory.mktemp("bpe")
    byte_level_bpe([" ".join(WORDS)] * 20, eos_token=EOS).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


# ---------------------------------------------------------------------------------------------
# presets and formats
# ---------------------------------------------------------------------------------------------


def test_presets_shape() -> None:
    assert set(PRESETS) >= {"sst2", "mrpc", "rte", "squad_v2"}
    assert PRESETS["sst2"].text_fields == ("sentence",)
    for name in ("mrpc", "rte"):
        assert PRESETS[name].text_fields == ("sentence1", "sentence2")
        assert PRESETS[name].truncation == "longest_first"
    for name in ("sst2", "mrpc", "rte"):
        spec = PRESETS[name]
        assert (spec.id_field, spec.max_length, spec.config) == ("idx", 128, name)
    sq = PRESETS["squad_v2"]
    assert (sq.text_fields, sq.id_field, sq.max_length, sq.truncation) == (
        ("question", "context"),
        "id",
        384,
        "only_second",
    )
    assert isinstance(sq, TaskSpec)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet", ""])
def test_sst2_columns_from_each_format(tmp_path: Path, suffix: str) -> None:
    df = glue_single(40)
    path = write(df, tmp_path / f"sst2{suffix or '_disk'}")
    s = load_samples("sst2", split="all", data=path, n=10, seed=3)
    assert isinstance(s, Samples) and len(s) == 10
    assert s.text_pairs is None and s.task == "sst2" and s.split == "all"
    assert s.max_length == 128
    rows = choose_rows(40, 10, 3)
    assert s.ids == [str(i) for i in df["idx"].to_numpy()[rows]]
    assert s.texts == df["sentence"].to_numpy()[rows].tolist()
    assert s.labels == df["label"].to_numpy()[rows].tolist()
    assert s.source["n_available"] == 40 and s.source["seed"] == 3
    assert s.source["path"] == str(path.resolve())
    json.dumps(s.source)


@pytest.mark.parametrize("task", ["mrpc", "rte"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ""])
def test_glue_pairs_from_each_format(tmp_path: Path, task: str, suffix: str) -> None:
    df = glue_pair(30, seed=1)
    path = write(df, tmp_path / f"{task}{suffix or '_disk'}")
    s = load_samples(task, split="all", data=path, n=None)
    assert len(s) == 30
    assert s.ids == [str(i) for i in range(30)]
    assert s.texts == df["sentence1"].tolist() and s.text_pairs == df["sentence2"].tolist()
    assert s.truncation == "longest_first"


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet", ""])
def test_squad_columns(tmp_path: Path, suffix: str) -> None:
    df = squad(12)
    path = write(df, tmp_path / f"squad{suffix or '_disk'}")
    s = load_samples("squad_v2", split="all", data=path, n=5, seed=0)
    rows = choose_rows(12, 5, 0)
    assert s.ids == df["id"].to_numpy()[rows].tolist()
    assert s.texts == df["question"].to_numpy()[rows].tolist()
    assert s.text_pairs == df["context"].to_numpy()[rows].tolist()
    assert (s.max_length, s.truncation) == (384, "only_second")
    assert s.labels is not None and s.labels[0]["text"] == ["film"]


def test_folder_of_split_files_and_save_to_disk_dict(tmp_path: Path) -> None:
    train, dev = glue_single(20, seed=1), glue_single(8, seed=2)
    folder = tmp_path / "glue_sst2"
    write(train, folder / "train.csv")
    write(dev, folder / "dev.csv")  # GLUE's raw name for the validation split
    s = load_samples("sst2", data=folder, n=None)
    assert s.texts == dev["sentence"].tolist()
    s = load_samples("sst2", data=folder, split="train", n=None)
    assert s.texts == train["sentence"].tolist()
    with pytest.raises(InputError, match=r"split 'test'.*dev\.csv"):
        load_samples("sst2", data=folder, split="test")

    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_pandas(train, preserve_index=False),
            "validation": datasets.Dataset.from_pandas(dev, preserve_index=False),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))
    s = load_samples("sst2", data=tmp_path / "dd", n=None)
    assert s.texts == dev["sentence"].tolist()
    with pytest.raises(InputError, match="available splits: train, validation"):
        load_samples("sst2", data=tmp_path / "dd", split="test")


def test_tsv_file(tmp_path: Path) -> None:
    df = glue_pair(6)
    s = load_samples("rte", split="all", data=write(df, tmp_path / "dev.tsv"), n=None)
    assert s.text_pairs == df["sentence2"].tolist()


# ---------------------------------------------------------------------------------------------
# choice of samples
# ---------------------------------------------------------------------------------------------


def test_choice_is_deterministic_sorted_and_seed_dependent(tmp_path: Path) -> None:
    path = write(glue_single(500), tmp_path / "sst2.parquet")
    a = load_samples("sst2", split="all", data=path, n=50, seed=7)
    b = load_samples("sst2", split="all", data=path, n=50, seed=7)
    c = load_samples("sst2", split="all", data=path, n=50, seed=8)
    assert a.ids == b.ids and a.texts == b.texts
    assert a.source["samples_sha256"] == b.source["samples_sha256"]
    assert a.ids != c.ids and a.source["samples_sha256"] != c.source["samples_sha256"]
    # kept in dataset order, drawn without replacement with numpy's Generator
    positions = [int(i) - 1000 for i in a.ids]
    assert positions == sorted(positions) and len(set(positions)) == 50
    expected = np.sort(np.random.default_rng(7).choice(500, size=50, replace=False))
    assert positions == expected.tolist()


def test_fewer_than_n_gives_all_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(glue_single(9), tmp_path / "few.csv")
    with caplog.at_level(logging.INFO, logger="repdrift.tasks"):
        s = load_samples("sst2", split="all", data=path, n=750)
        load_samples("sst2", split="all", data=path, n=750)
    assert len(s) == 9 and s.ids == [str(1000 + i) for i in range(9)]
    assert sum("9 available" in r.getMessage() for r in caplog.records) == 1
    assert len(load_samples("sst2", split="all", data=path, n=None)) == 9
    with pytest.raises(InputError, match="invalid sample setting n=0"):
        load_samples("sst2", split="all", data=path, n=0)


def test_ids_fall_back_to_split_and_row(tmp_path: Path) -> None:
    df = glue_single(6).drop(columns=["idx"])
    path = write(df, tmp_path / "noidx.jsonl")
    s = load_samples("sst2", split="all", data=path, n=3, seed=1)
    assert s.ids == [f"all-{r}" for r in choose_rows(6, 3, 1)]
    assert s.source["id_field"] is None
    held_out = load_samples("sst2", data=path, n=None)  # the id is the row of the file
    assert held_out.ids == [f"validation-{r}" for r in file_part(6, "validation", "x")[0]]


def test_duplicate_ids_rejected(tmp_path: Path) -> None:
    df = glue_single(5)
    df.loc[3, "idx"] = df.loc[1, "idx"]
    with pytest.raises(InputError, match=r"duplicate ids.*1001"):
        load_samples("sst2", split="all", data=write(df, tmp_path / "dup.csv"))


def test_missing_column_names_file_and_columns(tmp_path: Path) -> None:
    path = write(glue_single(5), tmp_path / "sst2.csv")
    with pytest.raises(InputError) as err:
        load_samples("mrpc", split="all", data=path)
    msg = str(err.value)
    assert str(path) in msg and "sentence1" in msg and "sentence, label, idx" in msg
    with pytest.raises(InputError, match=r"qid.*available columns"):
        load_samples("sst2", split="all", data=path, id_field="qid")


def test_custom_task(tmp_path: Path) -> None:
    df = pd.DataFrame({"text": ["one", "two", "three"], "label": [0, 1, 0], "id": ["a", "b", "c"]})
    s = load_samples("reviews", split="all", data=write(df, tmp_path / "r.jsonl"), n=None)
    assert (s.ids, s.texts, s.labels, s.max_length) == (
        ["a", "b", "c"],
        df["text"].tolist(),
        [0, 1, 0],
        CUSTOM_MAX_LENGTH,
    )
    df2 = pd.DataFrame({"premise": ["p1", "p2"], "hypothesis": ["h1", "h2"], "gold": [1, 0]})
    path2 = write(df2, tmp_path / "nli.csv")
    detected = load_samples("nli", split="all", data=path2)
    assert (detected.texts, detected.text_pairs, detected.labels) == (["p1", "p2"], ["h1", "h2"], None)
    s = load_samples(
        "nli", split="all", data=path2, text_fields=["premise", "hypothesis"], label_field="gold", max_length=64
    )
    assert s.text_pairs == ["h1", "h2"] and s.labels == [1, 0] and s.max_length == 64
    assert s.ids == ["all-0", "all-1"]
    with pytest.raises(InputError, match="unknown task 'nli'"):
        load_samples("nli")


@pytest.mark.parametrize(
    ("columns", "fields", "truncation"),
    [
        (["sentence1", "sentence2", "label"], ["sentence1", "sentence2"], "longest_first"),
        (["question", "context", "id"], ["question", "context"], "only_second"),
        (["premise", "hypothesis", "idx"], ["premise", "hypothesis"], "longest_first"),
        (["text", "labels"], ["text"], "longest_first"),
        (["sentence", "sentence1", "sentence2"], ["sentence1", "sentence2"], "longest_first"),
    ],
)
def test_common_column_names_are_detected_for_any_task(tmp_path, columns, fields, truncation):
    df = pd.DataFrame({c: [f"{c} {i}" if c not in ("label", "labels") else i % 2 for i in range(4)]
                       for c in columns})  # fmt: skip
    s = load_samples("my-task", split="all", data=write(df, tmp_path / "d.jsonl"), n=None)
    assert s.source["text_fields"] == fields and s.truncation == truncation
    assert s.texts == df[fields[0]].tolist()
    if "id" in columns or "idx" in columns:
        assert s.ids == [str(v) for v in df["id" if "id" in columns else "idx"]]
    if "labels" in columns:
        assert s.labels == [0, 1, 0, 1]


def test_ambiguous_or_unknown_columns_ask_for_text_fields_in_cli_words(tmp_path):
    df = pd.DataFrame({"uid": ["u1", "u2"], "review_text": ["good", "bad"], "stars": [5, 1]})
    path = write(df, tmp_path / "reviews.csv")
    with pytest.raises(InputError, match=r"reviews.csv.*uid, review_text, stars.*--text-fields"):
        load_samples("reviews", split="all", data=path)
    s = load_samples("reviews", split="all", data=path, text_fields=["review_text"], id_field="uid",
                     label_field="stars", max_length=512)  # fmt: skip
    assert (s.ids, s.texts, s.labels, s.max_length) == (["u1", "u2"], ["good", "bad"], [5, 1], 512)
    with pytest.raises(InputError, match="--data"):
        load_samples("reviews")


def test_truncation_is_warned_with_the_count(tmp_path, bert_tok, caplog):
    long = " ".join(["delight"] * 400)
    df = pd.DataFrame({"uid": ["a", "b", "c"], "review_text": [long, "short", long + " film"]})
    path = write(df, tmp_path / "long.csv")
    s = load_samples("reviews", split="all", data=path, text_fields=["review_text"], id_field="uid",
                     max_length=128)  # fmt: skip
    with caplog.at_level("WARNING", logger="repdrift.tasks.encoding"):
        ids = encode(s, bert_tok)
    assert [len(i) for i in ids] == [128, 3, 128]
    assert "2 of 3 samples are longer than max_length 128 tokens" in caplog.text
    assert "longest: 403 tokens" in caplog.text and "--max-length" in caplog.text
    caplog.clear()
    roomy = load_samples("reviews", split="all", data=path, text_fields=["review_text"], id_field="uid")
    with caplog.at_level("WARNING", logger="repdrift.tasks.encoding"):
        ids = encode(roomy, bert_tok)  # the custom-task budget (512) holds 400 words
    assert [len(i) for i in ids] == [402, 3, 403] and "truncated" not in caplog.text


def test_missing_text_value_rejected(tmp_path: Path) -> None:
    df = glue_single(4)
    df.loc[2, "sentence"] = None
    with pytest.raises(InputError, match=r"no text for sample id.*1002"):
        load_samples("sst2", split="all", data=write(df, tmp_path / "hole.parquet"))


# ---------------------------------------------------------------------------------------------
# encode
# ---------------------------------------------------------------------------------------------


def test_encode_single_matches_tokenizer(tmp_path: Path, bert_tok) -> None:
    df = glue_single(10)
    df.loc[0, "sentence"] = " ".join(["film"] * 300)
    s = load_samples("sst2", split="all", data=write(df, tmp_path / "s.csv"), n=None)
    ids = encode(s, bert_tok)
    assert len(ids) == 10 and len(ids[0]) == 128
    assert ids[0][0] == bert_tok.cls_token_id and ids[0][-1] == bert_tok.sep_token_id
    for text, got in zip(s.texts[1:], ids[1:], strict=True):
        assert got == bert_tok(text)["input_ids"]  # short: untruncated, unpadded


def test_encode_pairs_longest_first(tmp_path: Path, bert_tok) -> None:
    df = glue_pair(4)
    df.loc[0, "sentence1"] = " ".join(["film"] * 200)
    df.loc[1, "sentence2"] = " ".join(["plot"] * 200)
    s = load_samples("mrpc", split="all", data=write(df, tmp_path / "p.csv"), n=None, max_length=32)
    ids = encode(s, bert_tok)
    assert [len(x) for x in ids[:2]] == [32, 32]
    for a, b, got in zip(s.texts, s.text_pairs, ids, strict=True):
        # a plain reference: tokenize separately, cut the longer text first, add [CLS]/[SEP]
        ta = bert_tok(a, add_special_tokens=False)["input_ids"]
        tb = bert_tok(b, add_special_tokens=False)["input_ids"]
        while len(ta) + len(tb) > 32 - 3:
            if len(ta) > len(tb):
                ta.pop()
            else:
                tb.pop()
        cls, sep = bert_tok.cls_token_id, bert_tok.sep_token_id
        assert got == [cls, *ta, sep, *tb, sep]


def test_encode_squad_truncates_only_the_context(tmp_path: Path, bert_tok) -> None:
    df = squad(3, context_words=600)
    s = load_samples("squad_v2", split="all", data=write(df, tmp_path / "sq.jsonl"), n=None)
    ids = encode(s, bert_tok)
    sep = bert_tok.sep_token_id
    for question, got in zip(s.texts, ids, strict=True):
        assert len(got) == 384
        q = bert_tok(question, add_special_tokens=False)["input_ids"]
        first_sep = got.index(sep)
        assert got[1:first_sep] == q  # question intact
        assert got[-1] == sep


def test_encode_squad_question_longer_than_budget(tmp_path: Path, bert_tok) -> None:
    df = squad(2, context_words=50)
    df.loc[0, "question"] = " ".join(["plot"] * 100)
    s = load_samples("squad_v2", split="all", data=write(df, tmp_path / "sq.jsonl"), n=None, max_length=40)
    ids = encode(s, bert_tok)
    assert all(len(x) <= 40 for x in ids)
    assert len(ids[0]) == 40 and ids[0].count(bert_tok.sep_token_id) == 2
    q = bert_tok(s.texts[1], add_special_tokens=False)["input_ids"]
    assert ids[1][1 : 1 + len(q)] == q  # the normal sample kept its question


def test_encode_pairs_without_pair_template(tmp_path: Path, decoder_tok) -> None:
    df = squad(3, context_words=200)
    s = load_samples("squad_v2", split="all", data=write(df, tmp_path / "sq.parquet"), n=None, max_length=64)
    ids = encode(s, decoder_tok)
    eos = decoder_tok.eos_token_id
    for question, context, got in zip(s.texts, s.text_pairs, ids, strict=True):
        q = decoder_tok(question, add_special_tokens=False)["input_ids"]
        c = decoder_tok(context, add_special_tokens=False)["input_ids"]
        assert len(got) == 64
        assert got == [*q, eos, *c[: 64 - len(q) - 1]]
    # single sentences are unaffected by the pair logic
    s1 = load_samples("sst2", split="all", data=write(glue_single(3), tmp_path / "one.csv"), n=None)
    assert encode(s1, decoder_tok) == [decoder_tok(t)["input_ids"] for t in s1.texts]
