"""Held-out evaluation: per-depth MLM accuracy, RTD accuracy and RTD AUC, and the MLM
accuracy of always predicting the most frequent masked token (the unigram baseline).

The eval step is the train step's forward pass (no dropout, no update) under the same
shard_map, with masks and samples drawn from a fixed key per eval batch so every evaluation
of a checkpoint sees the same corruption. AUC comes from histograms of RTD logits summed over
devices, so it needs no gather of per-token scores to one host.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import PartitionSpec as P

from amos_jax import errors
from amos_jax import objective
from amos_jax import special_tokens
from amos_jax.models.amos import AmosModel
from amos_jax.train import step as step_lib

AUC_BINS = 4096
AUC_LOGIT_RANGE = 20.0


def logit_histograms(logits_BxL, labels_BxL, weights_BxL):
  """Counts of positive and negative tokens per logit bin: [2, AUC_BINS]."""
  scaled = (jnp.clip(logits_BxL, -AUC_LOGIT_RANGE, AUC_LOGIT_RANGE) + AUC_LOGIT_RANGE) / (
      2 * AUC_LOGIT_RANGE)
  bins = jnp.minimum((scaled * AUC_BINS).astype(jnp.int32), AUC_BINS - 1).reshape(-1)
  positive = (labels_BxL * weights_BxL).reshape(-1)
  negative = ((1 - labels_BxL) * weights_BxL).reshape(-1)
  return jnp.stack([jnp.zeros(AUC_BINS).at[bins].add(positive),
                    jnp.zeros(AUC_BINS).at[bins].add(negative)])


def auc_from_histograms(histograms) -> float:
  """P(score of a replaced token > score of an original one), ties counted half."""
  positive, negative = np.asarray(histograms, np.float64)
  if positive.sum() == 0 or negative.sum() == 0:
    return float("nan")
  negatives_below = np.cumsum(negative) - negative
  wins = np.sum(positive * (negatives_below + 0.5 * negative))
  return float(wins / (positive.sum() * negative.sum()))


def target_counts(masked: objective.MaskedBatch, vocab_size: int):
  """How often each token id is the target of a masked slot: [vocab_size]."""
  # int32: float32 counts stop being exact past 2**24 slots of one token.
  return jnp.zeros(vocab_size, jnp.int32).at[masked.targets.reshape(-1)].add(
      masked.valid.reshape(-1).astype(jnp.int32))


def eval_step(params, batch, eval_key, *, model: AmosModel,
              config: ml_collections.ConfigDict,
              special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX):
  """Per-device body: returns summed metrics, the AUC histograms and the masked targets'
  counts of this eval batch."""
  input_ids = batch["input_ids"]
  indices = step_lib.global_example_indices(input_ids.shape[0])
  mask_key, sample_key = jax.random.split(eval_key)
  masked = objective.mask_tokens(input_ids, step_lib.per_example_keys(mask_key, indices),
                                 config.objective.mask_prob, special)
  counts = jax.lax.psum(objective.local_counts(masked), step_lib.DATA_AXIS)
  outputs = objective.forward(params, model, config.objective, masked,
                              step_lib.per_example_keys(sample_key, indices),
                              jax.random.key(0), deterministic=True)
  _, metrics = objective.losses(outputs, masked, counts, model.config.generator.mlm_layers,
                                config.objective)
  histograms = logit_histograms(outputs.rtd_logits, outputs.replaced,
                                masked.padding_mask.astype(jnp.float32))
  # Weight each batch by its token count so batches of unequal padding average correctly.
  metrics = {name: value * counts.tokens for name, value in metrics.items()}
  targets = target_counts(masked, model.config.vocab_size)
  return jax.lax.psum((metrics, histograms, targets, counts.tokens), step_lib.DATA_AXIS)


def make_eval_step(model: AmosModel, config: ml_collections.ConfigDict, mesh,
                   special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX):
  body = functools.partial(eval_step, model=model, config=config, special=special)
  return jax.jit(jax.shard_map(body, mesh=mesh, in_specs=(P(), P(step_lib.DATA_AXIS), P()),
                               out_specs=P()))


def evaluate(eval_step_fn, params, batches, seed_key, mesh) -> dict[str, float]:
  """Runs the eval step over `batches` (host-local numpy) and returns averaged metrics."""
  totals, histograms, targets, tokens = None, 0.0, 0.0, 0.0
  for index, batch in enumerate(batches):
    metrics, batch_histograms, batch_targets, batch_tokens = eval_step_fn(
        params, step_lib.shard_batch(batch, mesh), jax.random.fold_in(seed_key, index))
    metrics = jax.device_get(metrics)
    totals = metrics if totals is None else jax.tree_util.tree_map(
        np.add, totals, metrics)
    histograms = histograms + np.asarray(batch_histograms)
    targets = targets + np.asarray(batch_targets, np.float64)
    tokens += float(batch_tokens)
  if totals is None:
    raise errors.InputError("The evaluation split produced no batches.")
  results = {f"eval/{name}": float(value) / max(tokens, 1.0) for name, value in totals.items()}
  results["eval/rtd_auc"] = auc_from_histograms(histograms)
  # What a generator that ignores its input scores on the same masked slots: the reference
  # that tells a generator using its context from one that learned token frequencies only.
  # The token is picked on these slots themselves, so no constant guess scores more.
  results["eval/mlm_unigram_accuracy"] = float(np.max(targets) / max(np.sum(targets), 1.0))
  return results
