"""Hugging Face export: transformers reproduces amos_jax, and amos_jax reads the export back."""

import json
import os
import shutil
import subprocess
import sys

import flax.traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")

# pylint: disable=wrong-import-position
from amos_jax import export
from amos_jax import inference
from amos_jax import special_tokens
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import encoder_tree
from amos_jax.formats import flax_export
from amos_jax.formats import hf_export
from amos_jax.formats import registry
from amos_jax.formats.hf import hf_config
from amos_jax.glue import tasks
from amos_jax.models import amos
from amos_jax.models import classifier
from tests import export_helpers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXTS = ["It is a truth universally acknowledged.", "Mr. Bennet made no answer.",
         ("Do you not want to know who has taken it?", "You want to tell me."),
         "My dear Mr. Bennet, said his lady to him one day, have you heard that Netherfield "
         "Park is let at last?"]

# Punctuation, digits, whitespace runs, non-ASCII (NFKC-normalized and unknown characters),
# and the special tokens written as text (plain characters for SentencePiece).
TOKENIZER_SAMPLE = [
    "It is a truth, universally acknowledged; that a single man -- in possession!",
    "  Mr.   Bennet\tmade no  answer.  ", "In 1813, 42 daughters paid $3.50 (or 7%)?",
    "Café naïve — “quoted” Ｆｕｌｌｗｉｄｔｈ ﬁne", "日本語のテキスト and an emoji 🙂",
    "[MASK] the [CLS] and [SEP], [PAD] or [UNK] tokens: x[MASK]y [[CLS]] [cls]",
    "[SEP][MASK]], [MASK][MASK]?? ok",
    "\u00a0non-breaking\u200bzero-width\n\nnew lines", "",
]


@pytest.fixture(scope="module")
def pretrained_hf(tmp_path_factory, tokenizer_path):
  return export_helpers.export_pretrained(str(tmp_path_factory.mktemp("hf")), tokenizer_path,
                                          export_format="hf")


def classifier_params(config, num_labels):
  """The test encoder under a random head (random, so that the logits test the head)."""
  head = classifier.ClassificationHead(config.hidden_size, num_labels, 0.0, init_std=0.5).init(
      jax.random.key(1), jnp.zeros((1, 2, config.hidden_size)))["params"]
  return {"encoder": amos.encoder_params(export_helpers.amos_params()), "head": head}


@pytest.fixture(scope="module", params=["mnli", "stsb"])
def finetuned_hf(request, tmp_path_factory, config, tokenizer_path):
  """(export dir, SequenceClassifier params, TaskSpec) of a fine-tuned HF export."""
  spec = tasks.get_task(request.param)
  params = classifier_params(config, spec.num_labels)
  out = registry.write_export(params, config, tokenizer_lib.load_tokenizer(tokenizer_path),
                              str(tmp_path_factory.mktemp("hf_ft") / "export"), task=spec,
                              export_format="hf")
  return out, params, spec


def padded_batch(encoder):
  """amos_jax's ids of TEXTS (one a pair) right-padded to one length, and the mask."""
  rows = encoder.tokenize(TEXTS)
  token_ids = np.full((len(rows), max(map(len, rows))), special_tokens.PAD_ID, np.int64)
  for index, row in enumerate(rows):
    token_ids[index, :len(row)] = row
  assert (token_ids == special_tokens.PAD_ID).any()  # The batch has padding.
  return token_ids, token_ids != special_tokens.PAD_ID


def torch_inputs(token_ids, mask):
  return dict(input_ids=torch.tensor(token_ids), attention_mask=torch.tensor(mask.astype(int)))


def test_export_layout_and_config(pretrained_hf, config):
  assert sorted(os.listdir(pretrained_hf)) == [
      "README.md", "config.json", "configuration_amos_jax.py", "model.safetensors",
      "modeling_amos_jax.py", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"]
  assert os.listdir(os.path.dirname(pretrained_hf)) == ["export"]  # No staging left.
  with open(os.path.join(pretrained_hf, "config.json")) as f:
    record = json.load(f)
  assert record["model_type"] == "amos_jax"
  assert record["architectures"] == ["AmosJaxModel"]
  assert record["auto_map"]["AutoModel"] == "modeling_amos_jax.AmosJaxModel"
  assert (record["relative_position_buckets"], record["relative_position_max_distance"],
          record["relative_position_bucket_function"]) == (
              config.relative_position_buckets, config.relative_position_max_distance,
              config.relative_position_bucket_function)
  # 0.0 for model configs from before model.attention_dropout_rate existed.
  assert record["attention_probs_dropout_prob"] == config.get("attention_dropout_rate", 0.0)
  assert record["hidden_dropout_prob"] == config.dropout_rate
  with open(os.path.join(pretrained_hf, "README.md")) as f:
    card = f.read()
  assert "2-layer post-LN Transformer encoder, hidden size 64" in card
  assert "trust_remote_code=True" in card


def test_auto_model_matches_amos_jax_hidden_states(pretrained_hf, config):
  model = transformers.AutoModel.from_pretrained(pretrained_hf, trust_remote_code=True).eval()
  assert type(model).__name__ == "AmosJaxModel"
  encoder = inference.load(pretrained_hf)
  token_ids, mask = padded_batch(encoder)
  expected = amos.TextEncoder(config).apply(
      {"params": amos.encoder_params(export_helpers.amos_params())}, token_ids, mask)
  with torch.no_grad():
    hidden = model(**torch_inputs(token_ids, mask)).last_hidden_state.numpy()
  np.testing.assert_allclose(hidden[mask], np.asarray(expected)[mask], atol=1e-4)


def test_sequence_classification_matches_amos_jax(finetuned_hf, config):
  out, params, spec = finetuned_hf
  model = transformers.AutoModelForSequenceClassification.from_pretrained(
      out, trust_remote_code=True).eval()
  if spec.is_regression:
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"
  else:
    assert model.config.id2label == dict(enumerate(spec.label_names))
    assert model.config.label2id == {name: i for i, name in enumerate(spec.label_names)}
  token_ids, mask = padded_batch(inference.load(out))
  expected = classifier.SequenceClassifier(config, spec.num_labels).apply(
      {"params": params}, token_ids, mask)
  with torch.no_grad():
    logits = model(**torch_inputs(token_ids, mask)).logits.numpy()
  assert np.abs(np.asarray(expected)).max() > 0.1  # A head that does something.
  np.testing.assert_allclose(logits, np.asarray(expected), atol=1e-4)


def test_a_new_head_gets_amos_jax_initialisation(pretrained_hf, config):
  model = transformers.AutoModelForSequenceClassification.from_pretrained(
      pretrained_hf, trust_remote_code=True, num_labels=3)
  encoder = transformers.AutoModel.from_pretrained(pretrained_hf, trust_remote_code=True)
  assert torch.equal(model.amos.encoder.layer[1].ffn_in.weight,
                     encoder.encoder.layer[1].ffn_in.weight)
  dense = model.classifier.dense
  assert abs(dense.weight.std().item() - config.init_std) < 0.01  # _init_weights' N(0, std).
  assert not dense.bias.any() and model.classifier.projection.weight.shape == (3, 64)


def test_tokenizer_gives_amos_jax_ids(pretrained_hf):
  tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained_hf)
  encoder = inference.load(pretrained_hf)
  assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
          tokenizer.sep_token_id, tokenizer.mask_token_id) == (0, 1, 2, 3, 4)
  for text in TOKENIZER_SAMPLE:
    assert tokenizer(text)["input_ids"] == encoder.tokenize([text])[0], text
  pairs = list(zip(TOKENIZER_SAMPLE, reversed(TOKENIZER_SAMPLE)))
  batch = tokenizer([a for a, _ in pairs], [b for _, b in pairs])
  assert batch["input_ids"] == encoder.tokenize(pairs)
  assert "token_type_ids" not in batch  # The model has no segment embeddings.


def flat(tree):
  return flax.traverse_util.flatten_dict(jax.device_get(tree), sep="/")


def assert_same_tree(got, want):
  got, want = flat(got), flat(want)
  assert sorted(got) == sorted(want)
  for path, value in want.items():
    assert got[path].dtype == value.dtype, path
    np.testing.assert_array_equal(got[path], value, err_msg=path)


def test_round_trip_gives_identical_parameters(tmp_path, pretrained_hf, finetuned_hf):
  original = amos.encoder_params(export_helpers.amos_params())
  assert_same_tree(inference.load(pretrained_hf).params, original)
  init = registry.load(pretrained_hf)
  assert init.kind == hf_export.KIND and init.task is None
  assert_same_tree(init.encoder_params, original)

  # And on to amos_jax's own format: the export command converts an export too.
  flax_dir = export.export_checkpoint(pretrained_hf, str(tmp_path / "flax"))
  assert_same_tree(flax_export.read_params_file(os.path.join(flax_dir, flax_export.PARAMS_FILE)),
                   original)

  out, params, spec = finetuned_hf
  loaded = inference.load(out)
  assert loaded.task == encoder_tree.TaskInfo(spec.name, spec.label_names)
  assert_same_tree(loaded.params, params)
  assert_same_tree(registry.load(out).encoder_params, params["encoder"])


def test_bf16_export_round_trips(tmp_path, tokenizer_path):
  out = export_helpers.export_pretrained(str(tmp_path), tokenizer_path, export_format="hf",
                                         dtype="bfloat16")
  with open(os.path.join(out, "config.json")) as f:
    assert json.load(f)["dtype"] == "bfloat16"
  expected = jax.tree.map(lambda x: np.asarray(x.astype(jnp.bfloat16)),
                          amos.encoder_params(export_helpers.amos_params()))
  assert_same_tree(inference.load(out).params, expected)
  model = transformers.AutoModel.from_pretrained(out, trust_remote_code=True)
  assert model.embeddings.word_embeddings.weight.dtype == torch.bfloat16


@pytest.fixture
def damaged_copy(tmp_path, pretrained_hf):
  return shutil.copytree(pretrained_hf, str(tmp_path / "export"))


def edit_config(directory, **changes):
  path = os.path.join(directory, "config.json")
  with open(path) as f:
    record = json.load(f)
  record.update(changes)
  with open(path, "w") as f:
    json.dump(record, f)


def truncate(directory, name):
  path = os.path.join(directory, name)
  with open(path, "rb") as f:
    content = f.read()
  with open(path, "wb") as f:
    f.write(content[:len(content) // 2])


@pytest.mark.parametrize("damage, message", [
    (lambda d: truncate(d, "model.safetensors"),
     r"model\.safetensors is not a readable safetensors file .*truncated"),
    (lambda d: edit_config(d, num_hidden_layers=3),
     r"model\.safetensors lacks tensor 'encoder\.layer\.2\.[\w.]+' \(shape .*\) that "
     r".*config\.json needs"),
    (lambda d: edit_config(d, hidden_size=32),
     r"tensor 'encoder\.layer\.0\.attention\.key\.weight' has shape \(64, 64\) but "
     r".*config\.json needs \(32, 32\)"),
    (lambda d: edit_config(d, num_attention_heads=4),
     r"'encoder\.relative_position_bias\.weight' has shape \(16, 2\) but .* needs \(16, 4\)"),
    (lambda d: edit_config(d, dtype="bfloat16"), r"is float32 but .*config\.json needs bfloat16"),
    (lambda d: edit_config(d, relative_position_bucket_function="log"),
     r"relative_position_bucket_function is 'log'"),
    (lambda d: truncate(d, "config.json"), r"config\.json is not valid JSON"),
])
def test_damaged_export_names_what_is_wrong(damaged_copy, damage, message):
  damage(damaged_copy)
  with pytest.raises(ValueError, match=message):
    inference.load(damaged_copy)


def test_config_round_trips_the_model_hyperparameters(config):
  model = config.to_dict()
  model["attention_dropout_rate"] = 0.1
  task = encoder_tree.TaskInfo("sst2", ("negative", "positive"))
  model_config, read_task = hf_config.from_hf(hf_config.to_hf(model, task, "float32"), "x")
  assert read_task == task
  for key in encoder_tree.ENCODER_CONFIG_KEYS:
    if key not in ("attention_implementation", "dtype"):  # Chosen again on load.
      assert model_config[key] == model[key], key
  assert model_config.attention_dropout_rate == 0.1


def test_cli_exports_a_pretraining_workdir_with_its_card(tmp_path, tokenizer_path):
  workdir = export_helpers.make_pretraining_workdir(str(tmp_path / "run"), tokenizer_path)
  with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
    f.write(json.dumps({"step": 5, "loss": 3.0, "eval/rtd_auc": 0.8125}) + "\n")
  out = str(tmp_path / "hf")
  completed = subprocess.run(
      [sys.executable, "-m", "amos_jax.export", f"--workdir={workdir}", f"--out={out}",
       "--format=hf", "--dtype=bfloat16"], capture_output=True, text=True, cwd=REPO,
      timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr[-2000:]
  with open(os.path.join(out, "README.md")) as f:
    card = f.read()
  assert "pretraining checkpoint at step 5" in card
  assert "| `optimizer.learning_rate` |" in card and "| `eval/rtd_auc` | 0.8125 |" in card
  model = transformers.AutoModel.from_pretrained(out, trust_remote_code=True)
  assert model.embeddings.word_embeddings.weight.dtype == torch.bfloat16


def test_a_finetuned_flax_export_converts_with_its_dev_figures(tmp_path, config,
                                                               tokenizer_path):
  spec = tasks.get_task("sst2")
  params = classifier_params(config, spec.num_labels)
  best = registry.write_export(params, config, tokenizer_lib.load_tokenizer(tokenizer_path),
                               str(tmp_path / "glue" / "seed_0" / "best"), task=spec)
  with open(tmp_path / "glue" / "results.json", "w") as f:
    json.dump({"median": {"validation": {"accuracy": 0.875}}, "seeds": [{}, {}, {}]}, f)
  out = export.export_checkpoint(best, str(tmp_path / "hf"), export_format="hf")
  with open(os.path.join(out, "README.md")) as f:
    card = f.read()
  assert "median dev metrics over 3 seeds" in card and "| `validation/accuracy` | 0.875 |" in card
  model = transformers.AutoModelForSequenceClassification.from_pretrained(
      out, trust_remote_code=True)
  assert model.config.id2label == {0: "negative", 1: "positive"}
  assert_same_tree(inference.load(out).params, params)


def test_a_bpe_tokenizer_is_refused_before_anything_is_written(tmp_path):
  bpe = tokenizer_lib.train_tokenizer(export_helpers.sentences(400), str(tmp_path / "bpe.model"),
                                      vocab_size=export_helpers.VOCAB_SIZE, model_type="bpe")
  with pytest.raises(ValueError, match=r"bpe\.model: the Hugging Face export converts unigram "
                                       r"SentencePiece models .* this one is BPE"):
    export_helpers.export_pretrained(str(tmp_path / "out"), bpe.model_path, export_format="hf")
  assert os.listdir(tmp_path / "out") == []  # Not even the staging directory.


@pytest.mark.parametrize("options", [
    # Exports written before the authors' buckets became the default.
    {"relative_position_bucket_function": "t5_bidirectional"},
    # A converted BERT/ELECTRA: token types, narrower embeddings, BERT's epsilon, GELU head.
    {"type_vocab_size": 2, "embedding_size": 32, "layer_norm_eps": 1e-12,
     "classifier_activation": "gelu", "relative_position_buckets": 0},
])
def test_architecture_options_match_amos_jax(tmp_path, tokenizer_path, options):
  config = export_helpers.model_config()
  config.update(options)
  spec = tasks.get_task("mnli")
  module = classifier.SequenceClassifier(config, spec.num_labels)
  params = module.init(jax.random.key(3), jnp.zeros((1, 8), jnp.int32),
                       jnp.ones((1, 8), bool))["params"]
  # Larger weights than init's, so that every part moves the outputs well past the tolerance.
  params = jax.tree.map(lambda p: p * 4 if p.ndim == 2 else p, params)
  out = registry.write_export(params, config, tokenizer_lib.load_tokenizer(tokenizer_path),
                              str(tmp_path / "hf"), task=spec, export_format="hf")
  model = transformers.AutoModelForSequenceClassification.from_pretrained(
      out, trust_remote_code=True).eval()
  token_ids, mask = padded_batch(inference.load(out))
  expected = module.apply({"params": params}, token_ids, mask)
  hidden = module.apply({"params": params}, token_ids, mask, method=module.encode)
  with torch.no_grad():
    outputs = model(**torch_inputs(token_ids, mask), output_hidden_states=True)
  np.testing.assert_allclose(outputs.hidden_states[-1].numpy()[mask], np.asarray(hidden)[mask],
                             atol=1e-4)
  np.testing.assert_allclose(outputs.logits.numpy(), np.asarray(expected), atol=1e-4)
  expected_config = {**config.to_dict(), "attention_implementation": None}
  del expected_config["generator"]
  assert inference.load(out).config.to_dict() == expected_config
