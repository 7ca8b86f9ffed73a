"""Inference from an export reproduces the training-time networks, without recompiling."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amos_jax import inference
from amos_jax import special_tokens
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import encoder_tree
from amos_jax.formats import registry
from amos_jax.glue import tasks
from amos_jax.models import amos
from amos_jax.models import classifier
from tests import export_helpers


@pytest.fixture(scope="module")
def amos_params(config):
  return export_helpers.amos_params()


@pytest.fixture(scope="module")
def pretrained_export(tmp_path_factory, config, amos_params, tokenizer_path):
  return registry.write_export(amos_params, config, tokenizer_lib.load_tokenizer(tokenizer_path),
                               str(tmp_path_factory.mktemp("pretrained") / "export"))


@pytest.fixture(scope="module")
def encoder(pretrained_export):
  return inference.load(pretrained_export)


def discriminator_hidden(config, amos_params, token_ids):
  """The training-time discriminator, run through AmosModel itself on unpadded ids."""
  ids = jnp.asarray([token_ids])
  def run(model, ids, mask):
    (hidden,) = model.discriminator(model.embed(ids), mask)
    return hidden
  # Jitted only for speed: eager op-by-op dispatch is slow on CPU.
  apply = jax.jit(lambda params, ids: amos.AmosModel(config).apply(
      {"params": params}, ids, jnp.ones_like(ids), method=run))
  return np.asarray(apply(amos_params, ids))[0]


TEXTS = ["It is a truth universally acknowledged.", "Mr. Bennet made no answer.",
         ("Do you not want to know who has taken it?", "You want to tell me."),
         " ".join(export_helpers.sentences(30))]  # Longer than max_position_embeddings.


def test_encode_matches_the_training_discriminator(encoder, config, amos_params):
  out = encoder.encode(TEXTS, batch_size=3)
  rows = encoder.tokenize(TEXTS)
  assert list(out.lengths) == [len(row) for row in rows]
  assert out.lengths[-1] == config.max_position_embeddings  # Truncated.
  for index, token_ids in enumerate(rows):
    expected = discriminator_hidden(config, amos_params, token_ids)
    # Padded batches and a single unpadded row reduce in different orders: float32 rounding
    # (a few ulps per layer; 1.4e-6 on one of 2,304 values was seen on one CPU), while a
    # masking bug would move values by 1e-2 or more.
    np.testing.assert_allclose(out.hidden_states[index, :len(token_ids)], expected,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out.hidden_states[index, len(token_ids):], 0)
    np.testing.assert_array_equal(out.pooled[index], out.hidden_states[index, 0])


def test_tokenize_adds_specials_to_singles_and_pairs(encoder):
  single, pair = encoder.tokenize(["A wife.", ("A wife.", "A man.")])
  body = encoder.tokenizer.encode("A wife.")
  assert single == [special_tokens.CLS_ID, *body, special_tokens.SEP_ID]
  assert pair[:len(single)] == single
  assert pair[len(single):] == [*encoder.tokenizer.encode("A man."), special_tokens.SEP_ID]


def test_no_recompile_within_a_bucket(encoder):
  encoder.encode(["Warm up the 32 bucket."], batch_size=4)
  traces = encoder.trace_count
  for count in (1, 3, 4, 7):  # Batch and length vary; all rows fit in 32 tokens.
    texts = export_helpers.sentences(count, seed=count)
    texts = [" ".join(text.split()[:6]) for text in texts]
    assert max(map(len, encoder.tokenize(texts))) <= 32
    encoder.encode(texts, batch_size=4)
  assert encoder.trace_count == traces
  encoder.encode([" ".join(export_helpers.sentences(4))], batch_size=4)  # The 64+ bucket.
  assert encoder.trace_count == traces + 1


def test_max_length_truncates_and_caps_the_buckets(pretrained_export, config, encoder):
  short = inference.load(pretrained_export, max_length=40)
  assert short.buckets == (32, 40)
  full_lengths = encoder.encode(TEXTS).lengths
  assert full_lengths.max() > 40
  np.testing.assert_array_equal(short.encode(TEXTS).lengths, np.minimum(full_lengths, 40))
  assert inference.load(pretrained_export, max_length=10_000).max_length == (
      config.max_position_embeddings)


def test_bf16_export_is_close(tmp_path, config, amos_params, tokenizer_path, encoder):
  out = registry.write_export(amos_params, config, tokenizer_lib.load_tokenizer(tokenizer_path),
                              str(tmp_path / "bf16"), dtype="bfloat16")
  bf16 = inference.load(out)
  assert bf16.params["token_embedding"].dtype == jnp.bfloat16
  np.testing.assert_allclose(bf16.encode(TEXTS).hidden_states,
                             encoder.encode(TEXTS).hidden_states, atol=0.1)


def test_predict_needs_a_task_head(encoder):
  with pytest.raises(ValueError, match="no task head"):
    encoder.predict(["A sentence."])


def classifier_params(config, amos_params, num_labels):
  """A pretrained encoder under a freshly initialised (random) head."""
  head = classifier.ClassificationHead(config.hidden_size, num_labels, 0.0).init(
      jax.random.key(1), jnp.zeros((1, 2, config.hidden_size)))["params"]
  return {"encoder": amos.encoder_params(amos_params), "head": head}


@pytest.mark.parametrize("task_name", ["mnli", "stsb"])
def test_fine_tuned_export_reproduces_predictions(tmp_path, config, amos_params, tokenizer_path,
                                                  task_name):
  spec = tasks.get_task(task_name)  # A GLUE TaskSpec is accepted as the export's task.
  params = classifier_params(config, amos_params, spec.num_labels)
  out = registry.write_export(params, config, tokenizer_lib.load_tokenizer(tokenizer_path),
                              str(tmp_path / "export"), task=spec)
  loaded = inference.load(out)
  task = loaded.task
  assert task == encoder_tree.TaskInfo(spec.name, spec.label_names)
  assert task.is_regression == spec.is_regression
  assert isinstance(loaded.module, classifier.SequenceClassifier)
  predictions = loaded.predict(TEXTS, batch_size=2)

  module = classifier.SequenceClassifier(config, task.num_labels)
  apply = jax.jit(lambda params, ids: module.apply({"params": params}, ids, jnp.ones_like(ids)))
  for index, token_ids in enumerate(loaded.tokenize(TEXTS)):
    expected = np.asarray(apply(params, jnp.asarray([token_ids])))[0]
    np.testing.assert_allclose(predictions.logits[index], expected, atol=1e-5)
  if task.is_regression:
    np.testing.assert_array_equal(predictions.scores, predictions.logits[:, 0])
    assert predictions.labels is None
  else:
    np.testing.assert_array_equal(predictions.label_ids, predictions.logits.argmax(-1))
    assert predictions.labels == [task.label_names[i] for i in predictions.label_ids]
    np.testing.assert_allclose(predictions.probabilities.sum(-1), 1, rtol=1e-6)
  # encode on a fine-tuned export runs its (pretrained) encoder.
  np.testing.assert_array_equal(loaded.encode(TEXTS[:1]).pooled.shape, (1, config.hidden_size))


def test_fine_tuned_export_needs_a_classifier_tree(tmp_path, config, amos_params,
                                                    tokenizer_path):
  with pytest.raises(ValueError, match="fine-tuned export takes a tree with keys encoder and head"):
    registry.write_export(amos_params, config,
                          tokenizer_lib.load_tokenizer(tokenizer_path), str(tmp_path / "export"),
                          task=encoder_tree.TaskInfo("sst2", ("negative", "positive")))
  assert not os.path.exists(tmp_path / "export")
