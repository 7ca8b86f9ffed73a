"""Reading the encoders people already have: transformers' BERT and ELECTRA, and the AMOS/COCO-LM
authors' Hugging Face and fairseq checkpoints. Every model is random and built here: hidden
states must equal the original implementation's, and token ids the original tokenizer's."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import transformers

from amos_jax import errors
from amos_jax import export
from amos_jax import inference
from amos_jax.formats import registry
from tests import export_helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TEXTS = ["It is a truth universally acknowledged, that a single man...",
         "In 1813, Mrs. Long paid $3.50 -- or 7%? \"Quoted\" 'words' don't split.",
         ("Do you not want to know who has taken it?", "You want to tell me; I'll listen."),
         "Mr. Bennet made no answer."]


def padded(rows, pad_id):
  """Right-padded [N, L] ids and the mask."""
  ids = np.full((len(rows), max(map(len, rows))), pad_id, np.int64)
  for i, row in enumerate(rows):
    ids[i, :len(row)] = row
  return ids, ids != pad_id


@pytest.fixture(scope="module")
def wordpiece_vocab(tmp_path_factory):
  """A cased WordPiece vocab.txt trained on the test sentences, BERT's specials first."""
  from tokenizers.implementations import BertWordPieceTokenizer
  trainer = BertWordPieceTokenizer(lowercase=False)
  trainer.train_from_iterator(export_helpers.sentences(300) + [
      t if isinstance(t, str) else " ".join(t) for t in TEXTS], vocab_size=300,
      special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
  directory = tmp_path_factory.mktemp("wordpiece")
  trainer.save_model(str(directory))
  return str(directory / "vocab.txt")


def save_transformers_model(directory, model, vocab_file, safe=True):
  model.save_pretrained(directory, safe_serialization=safe)
  transformers.BertTokenizerFast(vocab_file, do_lower_case=False).save_pretrained(directory)


def transformers_hidden(model, tokenizer, texts):
  """(the tokenizer's ids per text, the model's hidden states of the padded batch, mask)."""
  encodings = [tokenizer(t) if isinstance(t, str) else tokenizer(*t) for t in texts]
  rows = [encoding["input_ids"] for encoding in encodings]
  ids, mask = padded(rows, tokenizer.pad_token_id)
  type_ids, _ = padded([encoding["token_type_ids"] for encoding in encodings], 0)
  with torch.no_grad():
    hidden = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask.astype(int)),
                   token_type_ids=torch.tensor(type_ids)).last_hidden_state.numpy()
  return rows, hidden, mask


BERT = dict(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=64, type_vocab_size=2)


@pytest.mark.parametrize("kind", ["bert", "electra_small", "electra_pretraining_bin"])
def test_transformers_encoders_match_amos_jax(tmp_path, wordpiece_vocab, kind):
  torch.manual_seed(0)
  if kind == "bert":
    model = transformers.BertModel(transformers.BertConfig(**BERT))
  else:
    # ELECTRA-Small's shape: embeddings narrower than the hidden size, projected up.
    config = transformers.ElectraConfig(**BERT, embedding_size=16)
    model = (transformers.ElectraModel(config) if kind == "electra_small"
             else transformers.ElectraForPreTraining(config))
  model.eval()
  directory = str(tmp_path / kind)
  save_transformers_model(directory, model, wordpiece_vocab, safe=kind != "electra_pretraining_bin")
  tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
  base = model.electra if kind == "electra_pretraining_bin" else model
  rows, expected, mask = transformers_hidden(base, tokenizer, TEXTS)

  encoder = inference.load(directory)
  assert encoder.tokenize(TEXTS) == rows  # The original tokenizer's ids, pairs included.
  out = encoder.encode(TEXTS)
  np.testing.assert_allclose(out.hidden_states[mask], expected[mask], atol=1e-4)
  checkpoint = registry.load(directory)
  assert checkpoint.kind == "hf_bert" and checkpoint.model_config.layer_norm_eps == 1e-12
  line = registry.describe(checkpoint)
  assert "Hugging Face BERT/ELECTRA" in line and "key biases" in line
  if kind == "bert":
    assert "BERT's pooler" in line
  if kind == "electra_pretraining_bin":
    assert "ELECTRA's replaced-token head" in line


@pytest.mark.parametrize("kind", ["bert", "electra_small"])
def test_a_converted_bert_or_electra_exports_to_transformers(tmp_path, wordpiece_vocab, kind):
  torch.manual_seed(0)
  if kind == "bert":
    model = transformers.BertModel(transformers.BertConfig(**BERT))
  else:
    model = transformers.ElectraModel(transformers.ElectraConfig(**BERT, embedding_size=16))
  model.eval()
  original = str(tmp_path / "original")
  save_transformers_model(original, model, wordpiece_vocab)
  rows, expected, mask = transformers_hidden(
      model, transformers.AutoTokenizer.from_pretrained(original), TEXTS)

  out = export.export_checkpoint(original, str(tmp_path / "hf"), export_format="hf")
  tokenizer = transformers.AutoTokenizer.from_pretrained(out)
  assert [tokenizer(t)["input_ids"] if isinstance(t, str) else tokenizer(*t)["input_ids"]
          for t in TEXTS] == rows  # The original tokenizer's ids, pairs included.
  assert tokenizer("a [MASK] b")["input_ids"] == transformers.AutoTokenizer.from_pretrained(
      original)("a [MASK] b")["input_ids"]  # "[MASK]" in text is the special token, as BERT's.
  exported = transformers.AutoModel.from_pretrained(out, trust_remote_code=True).eval()
  ids, _ = padded(rows, tokenizer.pad_token_id)
  with torch.no_grad():  # Segments from the [SEP]s inside the model: the pair's are BERT's.
    hidden = exported(input_ids=torch.tensor(ids),
                      attention_mask=torch.tensor(mask.astype(int))).last_hidden_state.numpy()
  np.testing.assert_allclose(hidden[mask], expected[mask], atol=1e-4)
  with open(os.path.join(out, "README.md"), encoding="utf-8") as f:
    assert "BERT's WordPiece" in f.read()

  # And back into amos_jax: the same ids and hidden states.
  encoder = inference.load(out)
  assert registry.load(out).kind == "hf_export" and encoder.tokenize(TEXTS) == rows
  np.testing.assert_allclose(encoder.encode(TEXTS).hidden_states[mask], expected[mask],
                             atol=1e-4)


def test_a_vocab_txt_alone_gives_the_slow_tokenizers_ids(tmp_path, wordpiece_vocab):
  model = transformers.BertModel(transformers.BertConfig(**BERT))
  directory = str(tmp_path / "bert")
  model.save_pretrained(directory)
  shutil.copyfile(wordpiece_vocab, os.path.join(directory, "vocab.txt"))
  with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
    json.dump({"do_lower_case": True}, f)
  slow = transformers.BertTokenizer(wordpiece_vocab, do_lower_case=True)
  expected = [slow(t)["input_ids"] if isinstance(t, str) else slow(*t)["input_ids"]
              for t in TEXTS]
  assert inference.load(directory).tokenize(TEXTS) == expected


def test_bad_transformers_checkpoints_are_named(tmp_path, wordpiece_vocab):
  model = transformers.BertModel(transformers.BertConfig(**BERT))
  directory = str(tmp_path / "bert")
  save_transformers_model(directory, model, wordpiece_vocab)
  weights = os.path.join(directory, "model.safetensors")
  with open(weights, "rb") as f:
    content = f.read()
  with open(weights, "wb") as f:
    f.write(content[:len(content) // 2])
  with pytest.raises(errors.InputError, match=r"model\.safetensors is not a readable "
                                              r"safetensors file"):
    registry.load(directory)
  save_transformers_model(directory, model, wordpiece_vocab)
  with open(os.path.join(directory, "config.json")) as f:
    config = json.load(f)
  config["intermediate_size"] = 48
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config, f)
  with pytest.raises(errors.InputError, match=r"'encoder\.layer\.0\.intermediate\.dense\.weight'"
                                              r" has shape \(64, 32\) but the checkpoint's "
                                              r"config implies \(48, 32\)"):
    registry.load(directory)
  for name in ("tokenizer.json", "vocab.txt"):
    if os.path.exists(os.path.join(directory, name)):
      os.remove(os.path.join(directory, name))
  with pytest.raises(FileNotFoundError, match="No tokenizer.json or vocab.txt"):
    registry.load(directory)


# The authors' checkpoints, built with tests/authors_reference.py (their architecture and
# tokenizer, written from their published code).
AUTHORS = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               max_position_embeddings=64, type_vocab_size=0, rel_pos_bins=64, max_rel_pos=128,
               layer_norm_type="post", layer_norm_eps=1e-5, hidden_act="gelu",
               hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


@pytest.fixture(scope="module")
def authors_files(tmp_path_factory, tokenizer_path):
  """(directory with sp.model and dict.txt, the hub-style config, the reference model)."""
  from tests import authors_reference
  directory = tmp_path_factory.mktemp("authors_tokenizer")
  shutil.copyfile(tokenizer_path, directory / "sp.model")
  authors_reference.write_fairseq_dict(tokenizer_path, str(directory / "dict.txt"))
  vocab = max(authors_reference.load_authors_dict(str(directory / "dict.txt")).values()) + 1
  config = dict(AUTHORS, vocab_size=vocab)
  return directory, config, reference_model(config)


def reference_model(config):
  """The authors' architecture (tests/authors_reference.py), seeded, with larger weights than
  its init's, so that every part moves the outputs."""
  from tests import authors_reference
  torch.manual_seed(0)
  model = authors_reference.AuthorsModel(config, prefix="amos").eval()
  with torch.no_grad():
    for name, parameter in model.named_parameters():
      if parameter.ndim == 2:
        parameter.mul_(4.0 if "relative_attention_bias" not in name else 40.0)
  return model


def authors_checkpoint(tmp_path, authors_files, layout):
  """A checkpoint directory of the reference model in one of the authors' layouts."""
  from tests import authors_reference
  tokenizer_dir, config, model = authors_files
  directory = tmp_path / layout
  shutil.copytree(tokenizer_dir, directory)
  state = model.state_dict()
  if layout == "hf":
    torch.save(state, directory / "pytorch_model.bin")
    with open(directory / "config.json", "w") as f:
      json.dump(config, f)
  else:
    torch.save(authors_reference.hf_to_fairseq_state_dict(
        state, nested=layout == "fairseq_nested", config=config), directory / "model.pt")
  return str(directory)


@pytest.mark.parametrize("layout", ["hf", "fairseq_flat", "fairseq_nested"])
def test_authors_checkpoints_match_their_architecture_and_tokenizer(tmp_path, authors_files,
                                                                    layout):
  from tests import authors_reference
  tokenizer_dir, _, model = authors_files
  directory = authors_checkpoint(tmp_path, authors_files, layout)
  encoder = inference.load(directory)
  rows = [authors_reference.authors_encode(str(tokenizer_dir / "sp.model"),
                                           str(tokenizer_dir / "dict.txt"),
                                           *((t,) if isinstance(t, str) else t)) for t in TEXTS]
  assert encoder.tokenize(TEXTS) == rows
  ids, mask = padded(rows, pad_id=1)
  with torch.no_grad():
    expected = model(torch.tensor(ids), torch.tensor(mask.astype(int))).numpy()
  np.testing.assert_allclose(encoder.encode(TEXTS).hidden_states[mask], expected[mask],
                             atol=1e-4)
  checkpoint = registry.load(directory)
  activation = "gelu" if layout == "hf" else "tanh"
  assert checkpoint.model_config.classifier_activation == activation
  assert "64 relative position buckets up to distance 128" in registry.describe(checkpoint)


def trainable_fairseq_checkpoint(tmp_path, authors_files):
  """A fairseq model.pt of the authors' architecture, initialised to fine-tune quickly."""
  from tests import authors_reference
  tokenizer_dir, config, _ = authors_files
  torch.manual_seed(1)
  model = authors_reference.AuthorsModel(config)
  with torch.no_grad():  # The tiny preset's init_std: a 32-wide encoder that trains quickly.
    for parameter in model.parameters():
      if parameter.ndim == 2:
        parameter.normal_(0.0, 0.1)
  directory = tmp_path / "fairseq"
  shutil.copytree(tokenizer_dir, directory)
  torch.save(authors_reference.hf_to_fairseq_state_dict(model.state_dict()),
             directory / "model.pt")
  return str(directory)


def test_a_converted_checkpoint_fine_tunes_with_the_glue_command(tmp_path, authors_files):
  """The ordinary GLUE command on a fairseq model.pt; the kept export carries the authors'
  tokenizer and converts again with the export command."""
  from tests import test_glue_finetune
  directory = trainable_fairseq_checkpoint(tmp_path, authors_files)
  glue_dir = test_glue_finetune.make_glue_dir(str(tmp_path / "glue"))
  out = str(tmp_path / "sst2")
  command = [sys.executable, "-m", "amos_jax.main", f"--config={REPO}/configs/glue.py:sst2",
             f"--config.init_checkpoint={directory}", f"--workdir={out}",
             f"--config.data_dir={glue_dir}", "--config.seeds=(0,)", "--config.num_epochs=5",
             "--config.learning_rate=3e-3", "--config.seq_len=32"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(out, "results.json")) as f:
    results = json.load(f)
  assert results["init_kind"] == "authors_fairseq"
  # One line says what was loaded, and what was dropped or converted.
  assert (f"Read AMOS/COCO-LM authors' fairseq checkpoint at {directory}; 2 x 32, 4 heads; "
          "vocabulary") in result.stderr
  assert "new heads use tanh" in result.stderr and "dropped the attention key" in result.stderr
  assert results["seeds"][0]["best"]["metrics"]["validation"]["accuracy"] >= 0.9
  best = results["seeds"][0]["checkpoint"]
  assert {"sp.model", "dict.txt"} <= set(os.listdir(best))
  again = export.export_checkpoint(best, str(tmp_path / "again"))
  texts = ["truth is here", "wife and daughters"]
  first, second = inference.load(best).predict(texts), inference.load(again).predict(texts)
  np.testing.assert_array_equal(first.logits, second.logits)
  assert inference.load(again).tokenizer.special.pair_separator == (2, 2)


def test_a_converted_checkpoint_fine_tunes_on_squad(tmp_path, authors_files):
  """SQuAD 2.0 through the authors' tokenizer: the answers it learns come back as the
  contexts' own text."""
  from amos_jax.squad import data
  from amos_jax.squad import finetune
  from tests import test_squad_finetune
  directory = trainable_fairseq_checkpoint(tmp_path, authors_files)
  squad_dir = test_squad_finetune.write_squad_dir(str(tmp_path / "squad"))
  results = finetune.finetune_and_evaluate(
      test_squad_finetune.make_config(directory, squad_dir, num_epochs=6),
      str(tmp_path / "out"))
  assert results["init_kind"] == "authors_fairseq"
  scores = results["seeds"][0]["best"]["metrics"]["validation"]
  # Answering with the whole context would score F1 about 27 and exact 0 (measured: 77, 42).
  assert scores["HasAns_f1"] > 60 and scores["HasAns_exact"] > 25
  with open(os.path.join(str(tmp_path / "out"), "seed_0", finetune.PREDICTIONS_FILE)) as f:
    predictions = json.load(f)
  dev = data.load_json(data.split_path(squad_dir, "validation", "2.0"))
  # Spans hold no whitespace, so an answer is whole tokens of its context and nothing else.
  answered = [(predictions[e.qid], e.context) for e in dev if predictions[e.qid]]
  assert answered and all(text == text.strip() and text in context
                          for text, context in answered)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_load_and_say_so(tmp_path, authors_files, dtype):
  tokenizer_dir, config, model = authors_files
  directory = tmp_path / "half"
  shutil.copytree(tokenizer_dir, directory)
  torch.save({name: value.to(dtype) for name, value in model.state_dict().items()},
             directory / "pytorch_model.bin")
  with open(directory / "config.json", "w") as f:
    json.dump(config, f)
  checkpoint = registry.load(str(directory))
  name = str(dtype).removeprefix("torch.")
  assert f"{name} weights converted to float32" in registry.describe(checkpoint)
  table = checkpoint.params["discriminator"]["relative_position_bias"]["table"]
  assert table.dtype == np.float32
  np.testing.assert_array_equal(
      table, model.state_dict()["amos.relative_attention_bias.weight"].to(dtype).float().numpy())


def test_bad_authors_checkpoints_are_named(tmp_path, authors_files):
  directory = authors_checkpoint(tmp_path, authors_files, "fairseq_flat")
  os.remove(os.path.join(directory, "dict.txt"))
  with pytest.raises(FileNotFoundError, match=r"dict\.txt not found: an AMOS/COCO-LM "
                                              r"checkpoint comes with"):
    registry.load(directory)
  directory = authors_checkpoint(tmp_path / "2", authors_files, "fairseq_flat")
  weights = os.path.join(directory, "model.pt")
  with open(weights, "rb") as f:
    content = f.read()
  with open(weights, "wb") as f:
    f.write(content[:len(content) // 2])
  with pytest.raises(errors.InputError, match=r"model\.pt is not a readable PyTorch checkpoint"):
    registry.load(directory)
  directory = authors_checkpoint(tmp_path / "3", authors_files, "hf")
  with open(os.path.join(directory, "config.json")) as f:
    config = json.load(f)
  config["num_attention_heads"] = 8  # The relative table has 4 columns.
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config, f)
  with pytest.raises(errors.InputError, match=r"'amos\.relative_attention_bias\.weight' has "
                                              r"shape \(64, 4\) but the checkpoint's config "
                                              r"implies \(64, 8\)"):
    registry.load(directory)
  assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_a_saved_truncation_or_padding_setting_is_not_applied(tmp_path, wordpiece_vocab):
  """transformers can save tokenizer.json with a model's truncation and padding; amos_jax
  tokenizes documents whole and pads rows itself."""
  import tokenizers
  from amos_jax.data import wordpiece_tokenizer
  fast = transformers.BertTokenizerFast(wordpiece_vocab, do_lower_case=False)
  backend = tokenizers.Tokenizer.from_str(fast.backend_tokenizer.to_str())
  backend.enable_truncation(4)
  backend.enable_padding(length=64)
  backend.save(str(tmp_path / "tokenizer.json"))
  text = TEXTS[1]
  ids = wordpiece_tokenizer.load(str(tmp_path)).encode(text)
  assert ids == fast(text, add_special_tokens=False)["input_ids"] and len(ids) > 4
