"""Held-out evaluation: the unigram baseline counts exactly the masked slots, over all batches."""

import jax
import jax.numpy as jnp
import numpy as np

from amos_jax import objective
from amos_jax.train import evaluation
from amos_jax.train import step as step_lib
from tests import helpers

VOCAB = 128


def test_target_counts_are_the_masked_slots_targets():
  ids = helpers.text_batch(4, 32, VOCAB, padded_rows=1)["input_ids"]
  masked = objective.mask_tokens(jnp.asarray(ids), helpers.keys(0, 4), 0.15)
  counts = np.asarray(evaluation.target_counts(masked, VOCAB))
  valid = np.asarray(masked.valid)
  expected = np.bincount(np.asarray(masked.targets)[valid], minlength=VOCAB)
  np.testing.assert_array_equal(counts, expected)
  # Unmasked slots (the padded row has fewer) are not counted.
  assert counts.sum() == valid.sum() < valid.size


def test_the_unigram_accuracy_is_taken_over_all_batches_together():
  def eval_step_fn(params, batch, key):
    del params, key
    # Batch 0's slots are 5 x token 1 and 1 x token 2; batch 1's are 6 x token 2.
    first = int(np.asarray(batch["input_ids"])[0, 0]) == 0
    targets = np.array([0.0, 5.0, 1.0]) if first else np.array([0.0, 0.0, 6.0])
    histograms = np.zeros((2, evaluation.AUC_BINS))
    histograms[0, -1] = histograms[1, 0] = 1.0
    # Metrics come summed over the batch's 10 tokens, as eval_step weights them.
    return {"loss": np.float32(20.0)}, histograms, targets, np.float32(10.0)

  batches = [{"input_ids": np.full((jax.device_count(), 4), index, np.int32)}
             for index in range(2)]
  results = evaluation.evaluate(eval_step_fn, None, batches, jax.random.key(0),
                                step_lib.make_mesh())
  # Token 2, 7 of the 12 slots; per-batch maxima would average (5/6 + 6/6) / 2 instead.
  assert results["eval/mlm_unigram_accuracy"] == 7 / 12
  assert results["eval/loss"] == 2.0 and results["eval/rtd_auc"] == 1.0
