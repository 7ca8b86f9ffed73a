"""GLUE loading from fake TSVs in each task's real layout, bad input, and TFDS (mocked)."""

import os

import pytest

from amos_jax.glue import data
from amos_jax.glue.data import Example

MNLI_HEADER = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse",
    "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
    "label1", "label2", "label3", "label4", "label5", "gold_label"]
STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2",
               "sentence1", "sentence2", "score"]


def write_tsv(root, glue_dir, file_name, rows, prefix=""):
  os.makedirs(os.path.join(root, glue_dir), exist_ok=True)
  with open(os.path.join(root, glue_dir, file_name), "w", encoding="utf-8") as f:
    f.write(prefix + "".join("\t".join(row) + "\n" for row in rows))


def mnli_row(premise, hypothesis, gold):
  return ["0", "1", "1e", "fiction", "(", "(", "(", "(", premise, hypothesis,
          gold, gold, gold, gold, gold, gold]


def test_cola_headerless_four_columns(tmp_path):
  write_tsv(tmp_path, "CoLA", "train.tsv", [
      ["gj04", "1", "", "Our friends won't buy this analysis, let alone the next one."],
      ["gj04", "0", "*", 'He said "they is.'],
  ])
  assert data.load_tsv("cola", "train", str(tmp_path)) == [
      Example("Our friends won't buy this analysis, let alone the next one.", None, 1),
      Example('He said "they is.', None, 0),
  ]


def test_cola_test_set_has_a_header_and_no_labels(tmp_path):
  write_tsv(tmp_path, "CoLA", "test.tsv", [["index", "sentence"], ["0", "Bill whistled."]])
  assert data.load_tsv("cola", "test", str(tmp_path), allow_unlabeled=True) == [
      Example("Bill whistled.", None, None)]


def test_sst2_keeps_quote_characters_as_text(tmp_path):
  # With default csv quoting, the unbalanced quote would swallow the following lines.
  write_tsv(tmp_path, "SST-2", "dev.tsv", [
      ["sentence", "label"], ['" the movie \'s title is apt ', "0"], ["a gem . ", "1"]])
  assert data.load_tsv("sst2", "validation", str(tmp_path)) == [
      Example('" the movie \'s title is apt ', None, 0), Example("a gem . ", None, 1)]


def test_mrpc_with_byte_order_mark(tmp_path):
  write_tsv(tmp_path, "MRPC", "train.tsv", [
      ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
      ["1", "702876", "702977", "Amrozi accused his brother.", "Referring to him, Amrozi ..."],
      ["0", "2108705", "2108831", "Yucaipa owned Dominick 's.", "Yucaipa bought it."],
  ], prefix="\ufeff")
  assert data.load_tsv("mrpc", "train", str(tmp_path)) == [
      Example("Amrozi accused his brother.", "Referring to him, Amrozi ...", 1),
      Example("Yucaipa owned Dominick 's.", "Yucaipa bought it.", 0),
  ]


def test_stsb_score_is_a_float(tmp_path):
  write_tsv(tmp_path, "STS-B", "dev.tsv", [
      STSB_HEADER,
      ["0", "main-captions", "MSRvid", "2012test", "0000", "none", "none",
       "A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", "5.000"],
      ["1", "main-captions", "MSRvid", "2012test", "0002", "none", "none",
       "A young child is riding a horse.", "A child is riding a horse.", "4.750"],
  ])
  examples = data.load_tsv("stsb", "validation", str(tmp_path))
  assert examples == [
      Example("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.", 5.0),
      Example("A young child is riding a horse.", "A child is riding a horse.", 4.75),
  ]
  assert isinstance(examples[0].label, float)


def test_mnli_matched_and_mismatched_string_labels(tmp_path):
  write_tsv(tmp_path, "MNLI", "dev_matched.tsv", [
      MNLI_HEADER, mnli_row("P1", "H1", "neutral"), mnli_row("P2", "H2", "contradiction")])
  write_tsv(tmp_path, "MNLI", "dev_mismatched.tsv", [
      MNLI_HEADER, mnli_row("P3", "H3", "entailment")])
  # TFDS ids: entailment 0, neutral 1, contradiction 2.
  assert data.load_tsv("mnli", "validation_matched", str(tmp_path)) == [
      Example("P1", "H1", 1), Example("P2", "H2", 2)]
  assert data.load_tsv("mnli", "validation_mismatched", str(tmp_path)) == [
      Example("P3", "H3", 0)]


def test_qqp(tmp_path):
  write_tsv(tmp_path, "QQP", "train.tsv", [
      ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
      ["133273", "213221", "213222", "How is the life of a math student?",
       "Which level of prepration is enough?", "0"],
      ["402555", "536040", "536041", "How do I control my horny emotions?",
       "How do you control your horniness?", "1"],
  ])
  assert [e.label for e in data.load_tsv("qqp", "train", str(tmp_path))] == [0, 1]


@pytest.mark.parametrize("name, glue_dir, columns, labels, expected", [
    ("qnli", "QNLI", ["index", "question", "sentence", "label"],
     ["not_entailment", "entailment"], [1, 0]),
    ("rte", "RTE", ["index", "sentence1", "sentence2", "label"],
     ["not_entailment", "entailment"], [1, 0]),
    # WNLI's TSV has 0/1 where 1 is entailment, which is TFDS's id 1 too.
    ("wnli", "WNLI", ["index", "sentence1", "sentence2", "label"], ["1", "0"], [1, 0]),
])
def test_pair_tasks_with_index_column(tmp_path, name, glue_dir, columns, labels, expected):
  rows = [[str(i), f"a{i}", f"b{i}", label] for i, label in enumerate(labels)]
  write_tsv(tmp_path, glue_dir, "dev.tsv", [columns] + rows)
  assert data.load_tsv(name, "validation", str(tmp_path)) == [
      Example(f"a{i}", f"b{i}", label) for i, label in enumerate(expected)]


def test_blank_lines_are_skipped(tmp_path):
  write_tsv(tmp_path, "SST-2", "train.tsv", [["sentence", "label"], ["ok", "1"], [""]])
  assert data.load_tsv("sst2", "train", str(tmp_path)) == [Example("ok", None, 1)]


# Bad input: each error names the file and what was expected.


def test_missing_task_directory(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"No SST-2/ directory.*SST-2/train\.tsv"):
    data.load_tsv("sst2", "train", str(tmp_path))


def test_missing_file(tmp_path):
  write_tsv(tmp_path, "MNLI", "dev_matched.tsv", [MNLI_HEADER, mnli_row("P", "H", "neutral")])
  with pytest.raises(FileNotFoundError, match=r"dev_mismatched\.tsv.*validation_mismatched"):
    data.load_tsv("mnli", "validation_mismatched", str(tmp_path))


def test_missing_column_names_the_columns_found(tmp_path):
  write_tsv(tmp_path, "RTE", "train.tsv", [["index", "premise", "hypothesis", "label"]])
  with pytest.raises(ValueError, match=r"train\.tsv: missing column\(s\) 'sentence1', "
                     r"'sentence2'; the header has 'index', 'premise', 'hypothesis', 'label'"):
    data.load_tsv("rte", "train", str(tmp_path))


def test_unknown_label_names_line_and_allowed_labels(tmp_path):
  write_tsv(tmp_path, "MNLI", "train.tsv", [
      MNLI_HEADER[:10] + ["label1", "gold_label"],
      mnli_row("P", "H", "neutral")[:10] + ["neutral", "neutral"],
      mnli_row("P", "H", "neutral")[:10] + ["-", "-"],
  ])
  with pytest.raises(ValueError, match=r"train\.tsv, line 3: unknown label '-'; allowed labels "
                     r"are entailment, neutral, contradiction or their ids 0, 1, 2"):
    data.load_tsv("mnli", "train", str(tmp_path))


def test_out_of_range_label_id(tmp_path):
  write_tsv(tmp_path, "SST-2", "train.tsv", [["sentence", "label"], ["x", "2"]])
  with pytest.raises(ValueError, match=r"line 2: unknown label '2'"):
    data.load_tsv("sst2", "train", str(tmp_path))


def test_regression_label_not_a_number(tmp_path):
  write_tsv(tmp_path, "STS-B", "train.tsv", [STSB_HEADER, ["x"] * 9 + ["high"]])
  with pytest.raises(ValueError, match=r"line 2: label 'high' is not a number"):
    data.load_tsv("stsb", "train", str(tmp_path))


def test_wrong_number_of_fields(tmp_path):
  write_tsv(tmp_path, "QNLI", "train.tsv", [
      ["index", "question", "sentence", "label"], ["0", "q", "s with\ta tab", "entailment"]])
  with pytest.raises(ValueError, match=r"line 2: expected 4 tab-separated fields, found 5"):
    data.load_tsv("qnli", "train", str(tmp_path))
  write_tsv(tmp_path, "CoLA", "train.tsv", [["gj04", "1", "truncated row"]])
  with pytest.raises(ValueError, match=r"line 1: expected 4 tab-separated fields, found 3"):
    data.load_tsv("cola", "train", str(tmp_path))


def test_empty_split(tmp_path):
  write_tsv(tmp_path, "SST-2", "dev.tsv", [["sentence", "label"]])
  with pytest.raises(ValueError, match=r"dev\.tsv has no examples"):
    data.load_tsv("sst2", "validation", str(tmp_path))
  write_tsv(tmp_path, "SST-2", "train.tsv", [])
  with pytest.raises(ValueError, match=r"train\.tsv is empty"):
    data.load_tsv("sst2", "train", str(tmp_path))


def test_test_split_needs_allow_unlabeled(tmp_path):
  write_tsv(tmp_path, "SST-2", "test.tsv", [["index", "sentence"], ["0", "fine"]])
  with pytest.raises(ValueError, match="has no labels.*allow_unlabeled=True"):
    data.load_tsv("sst2", "test", str(tmp_path))


def test_unknown_split_and_task(tmp_path):
  with pytest.raises(ValueError, match="no split 'validation'.*validation_matched"):
    data.load_tsv("mnli", "validation", str(tmp_path))
  with pytest.raises(ValueError, match="Unknown GLUE task 'boolq'"):
    data.load_tsv("boolq", "train", str(tmp_path))


# TFDS: loading must not download.


def test_tfds_mock_data(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=5):
    mnli = data.load_tfds("mnli", "validation_mismatched", str(tmp_path))
    stsb = data.load_tfds("stsb", "train", str(tmp_path))
    cola = data.load_tfds("cola", "validation", str(tmp_path))
    sst2_test = data.load_tfds("sst2", "test", str(tmp_path), allow_unlabeled=True)
  assert len(mnli) == 5
  assert all(isinstance(e.text_a, str) and isinstance(e.text_b, str) for e in mnli)
  assert all(e.label in (0, 1, 2) for e in mnli)
  assert all(isinstance(e.label, float) for e in stsb)
  assert all(e.text_b is None and e.label in (0, 1) for e in cola)
  assert [e.label for e in sst2_test] == [None] * 5


def test_tfds_unprepared_is_a_clear_error(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(FileNotFoundError, match="glue/rte is not prepared.*download=False"):
    data.load_tfds("rte", "train", str(tmp_path))
  with pytest.raises(ValueError, match="allow_unlabeled"):
    data.load_tfds("rte", "test", str(tmp_path))
