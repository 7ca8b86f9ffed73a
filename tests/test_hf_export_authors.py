"""The Hugging Face export of a converted AMOS/COCO-LM authors' checkpoint: AutoTokenizer
(their rewriting rules, shipped as remote code) gives amos_jax's ids, AutoModel amos_jax's
hidden states, and amos_jax reads the export back."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

# pylint: disable=wrong-import-position
from amos_jax import export
from amos_jax import inference
from amos_jax.data import authors_tokenizer
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import registry
from tests import authors_reference
from tests import export_helpers
from tests import test_hf_export
from tests import test_released_checkpoints

# Every rewrite of the authors' pre-tokenisation: `` '' and curly quotes, the acute accent,
# em and en dashes, punctuation runs at both ends, contractions to re-join, numbers,
# accents, SentencePiece's own "▁", and their special tokens written as text.
TEXTS = [
    "``Quoted,'' she said \u2014 \u201cdon't\u201d \u2018go\u2019 \u2013 They\u2019ll see.",
    "Don't! They\u2019ll pay $3.50 (or 7%)... right?!",
    "  caf\u00e9 na\u00efve  Z\u00fcrich\tis near;  WE ' LL see O'Neill's -- \"Yes!\"  ",
    "U.S. 1,000.50 ((nested)) ?!? acute\u00b4s don ' t",
    "<mask> </s> <s> [MASK] written as text",
    "\u2581 a \u2581 ,",
    "",
]
PAIRS = [(TEXTS[0], TEXTS[1]), (TEXTS[2], TEXTS[3]), (TEXTS[4], TEXTS[6])]


@pytest.fixture(scope="module")
def authors_files(tmp_path_factory):
  """(directory with sp.model and dict.txt, config, reference model) as
  test_released_checkpoints' fixture, with a SentencePiece model trained on TEXTS too, so
  that few of their characters are unknown."""
  directory = tmp_path_factory.mktemp("authors_tokenizer")
  lines = export_helpers.sentences(300) + TEXTS * 20
  tokenizer_lib.train_tokenizer(lines, str(directory / "sp.model"), vocab_size=200)
  authors_reference.write_fairseq_dict(str(directory / "sp.model"), str(directory / "dict.txt"))
  vocab = max(authors_reference.load_authors_dict(str(directory / "dict.txt")).values()) + 1
  # Room for the longest pair untruncated.
  config = dict(test_released_checkpoints.AUTHORS, vocab_size=vocab, max_position_embeddings=128)
  return directory, config, test_released_checkpoints.reference_model(config)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, authors_files):
  """(the converted fairseq checkpoint, its Hugging Face export)."""
  root = tmp_path_factory.mktemp("authors_hf")
  checkpoint = test_released_checkpoints.authors_checkpoint(root, authors_files, "fairseq_flat")
  return checkpoint, export.export_checkpoint(checkpoint, str(root / "hf"), export_format="hf")


@pytest.fixture(scope="module")
def hf_tokenizer(exported):
  return transformers.AutoTokenizer.from_pretrained(exported[1], trust_remote_code=True)


def hf_ids(tokenizer, texts):
  return [tokenizer(t)["input_ids"] if isinstance(t, str) else tokenizer(*t)["input_ids"]
          for t in texts]


def test_export_layout_and_config(exported):
  _, out = exported
  assert sorted(os.listdir(out)) == [
      "README.md", "authors_pieces.py", "config.json", "configuration_amos_jax.py", "dict.txt",
      "model.safetensors", "modeling_amos_jax.py", "sp.model", "tokenization_amos_jax.py",
      "tokenizer_config.json"]
  with open(os.path.join(out, "config.json")) as f:
    config = json.load(f)
  assert config["amos_jax_tokenizer"] == authors_tokenizer.KIND
  assert (config["pad_token_id"], config["sep_token_id"]) == (1, 2)
  with open(os.path.join(out, "README.md")) as f:
    card = f.read()
  assert "fairseq dictionary" in card
  assert "AutoTokenizer.from_pretrained(PATH, trust_remote_code=True)" in card


def test_auto_tokenizer_gives_amos_jax_ids(exported, authors_files, hf_tokenizer):
  checkpoint, _ = exported
  directory = authors_files[0]
  assert type(hf_tokenizer).__name__ == "AmosJaxAuthorsTokenizer"
  assert (hf_tokenizer.cls_token_id, hf_tokenizer.pad_token_id, hf_tokenizer.sep_token_id,
          hf_tokenizer.unk_token_id) == (0, 1, 2, 3)
  assert hf_tokenizer.mask_token_id == len(hf_tokenizer) - 1  # <mask> last, as fairseq's.
  rows = inference.load(checkpoint).tokenize(TEXTS + PAIRS)
  assert max(map(len, rows)) < 128  # Nothing truncated.
  # The rewriting texts have no <unk>, so they test the pieces (only "[MASK]" as text has).
  assert not [row for row in rows[:4] if 3 in row]
  assert hf_ids(hf_tokenizer, TEXTS + PAIRS) == rows
  assert rows[len(TEXTS)][:1] == [0] and [2, 2] in [rows[len(TEXTS)][i:i + 2]
                                                      for i in range(len(rows[len(TEXTS)]))]
  # And the authors' own code (tests/authors_reference.py) gives them too.
  assert rows == [authors_reference.authors_encode(
      str(directory / "sp.model"), str(directory / "dict.txt"),
      *((t,) if isinstance(t, str) else t)) for t in TEXTS + PAIRS]
  batch = hf_tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True)
  assert "token_type_ids" not in batch  # The model has no segment embeddings.
  for ids, mask, row in zip(batch["input_ids"], batch["attention_mask"], rows[len(TEXTS):]):
    assert ids == row + [1] * (len(ids) - len(row))  # <pad> is 1, on the right.
    assert mask == [1] * len(row) + [0] * (len(ids) - len(row))
  assert hf_tokenizer.decode(rows[1], skip_special_tokens=True) == (
      authors_tokenizer.load(str(directory)).decode(rows[1]))


def test_the_export_tokenizes_offline_without_amos_jax(tmp_path, exported, hf_tokenizer):
  """The shipped code is self-contained: a Python that cannot import amos_jax loads it."""
  _, out = exported
  script = ("import importlib.util, json, sys\n"
            "assert importlib.util.find_spec('amos_jax') is None\n"
            "from transformers import AutoTokenizer\n"
            "tokenizer = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)\n"
            "print(json.dumps([tokenizer(*t)['input_ids'] for t in json.loads(sys.argv[2])]))")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
  texts = [[t] for t in TEXTS] + [list(pair) for pair in PAIRS]
  completed = subprocess.run([sys.executable, "-c", script, out, json.dumps(texts)],
                             cwd=str(tmp_path), env=env, capture_output=True, text=True,
                             timeout=120, check=False)
  assert completed.returncode == 0, completed.stderr[-2000:]
  assert json.loads(completed.stdout) == hf_ids(hf_tokenizer, TEXTS + PAIRS)


def test_auto_model_matches_amos_jax_and_the_authors(exported, authors_files):
  checkpoint, out = exported
  texts = TEXTS[:4] + PAIRS
  encoder = inference.load(checkpoint)
  ids, mask = test_released_checkpoints.padded(encoder.tokenize(texts), pad_id=1)
  model = transformers.AutoModel.from_pretrained(out, trust_remote_code=True).eval()
  with torch.no_grad():
    hidden = model(**test_hf_export.torch_inputs(ids, mask)).last_hidden_state.numpy()
    authors = authors_files[2](torch.tensor(ids), torch.tensor(mask.astype(int))).numpy()
  expected = encoder.encode(texts).hidden_states
  np.testing.assert_allclose(hidden[mask], expected[mask], atol=1e-4)
  np.testing.assert_allclose(hidden[mask], authors[mask], atol=1e-4)


def test_amos_jax_reads_the_export_back(exported, hf_tokenizer):
  checkpoint, out = exported
  loaded = registry.load(out)
  assert loaded.kind == "hf_export" and loaded.tokenizer.kind == authors_tokenizer.KIND
  original = inference.load(checkpoint)
  assert inference.load(out).tokenize(TEXTS + PAIRS) == original.tokenize(TEXTS + PAIRS)
  test_hf_export.assert_same_tree(loaded.encoder_params,
                                  registry.load(checkpoint).encoder_params)
  # transformers' save_pretrained keeps the code and files: the copy loads the same way.
  copy = os.path.join(os.path.dirname(out), "saved")
  hf_tokenizer.save_pretrained(copy)
  again = transformers.AutoTokenizer.from_pretrained(copy, trust_remote_code=True)
  assert hf_ids(again, TEXTS + PAIRS) == hf_ids(hf_tokenizer, TEXTS + PAIRS)
  shutil.rmtree(copy)
