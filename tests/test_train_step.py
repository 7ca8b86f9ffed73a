"""The data-parallel train step: sharded equals single-device, and it learns."""

import jax
import numpy as np
import pytest

from amos_jax.aot import programs
from amos_jax.train import build as build_lib
from amos_jax.train import step as step_lib
from configs import default
from tests import helpers


def run_steps(config, devices, batches):
  pretraining = build_lib.build(config, step_lib.make_mesh(devices))
  state = build_lib.initial_state(pretraining, config)
  key = build_lib.step_seed_key(config)
  history = []
  for batch in batches:
    state, metrics = pretraining.train_step(
        state, step_lib.shard_batch(batch, pretraining.mesh), key)
    history.append(jax.device_get(metrics))
  return state, history  # Global arrays, their shardings kept.


def learning_config(preset="amos"):
  """200 steps with 20 of warmup. The non-finite test builds the same step as the AMOS
  learning test, so the two share one compile (conftest's cache)."""
  config = default.apply_preset(helpers.tiny_config(), preset)
  config.num_train_steps = 200
  config.optimizer.warmup_steps = 20
  return config


def with_dropout(config):
  """Hidden and attention dropout on: their masks must not depend on the split either."""
  config.model.dropout_rate = config.model.attention_dropout_rate = 0.1
  return config


@pytest.mark.slow
def test_eight_devices_match_one_device_with_the_optimizer_state_replicated_or_split():
  """AMOS only: the ELECTRA preset runs the same step with one generator depth and no
  mixture, so the per-device masking, sampling and dropout streams checked here are its
  streams too. With config.shard_optimizer_state, each device holds an eighth of the
  moments and the run is the replicated one's up to rounding: the gradients are
  reduce-scattered instead of all-reduced, and the global norm (clipping) sums split arrays,
  in other orders."""
  assert jax.device_count() == 8
  config = with_dropout(helpers.tiny_config())
  config.optimizer.warmup_steps = 1
  batches = [helpers.text_batch(16, config.seq_len, config.model.vocab_size, padded_rows=r)
             for r in (3, 5, 0)]
  one_state, one_history = run_steps(config, jax.devices()[:1], batches)
  eight_state, eight_history = run_steps(config, jax.devices(), batches)
  for one, eight in zip(one_history, eight_history):
    assert one.keys() == eight.keys()
    for name in one:
      np.testing.assert_allclose(eight[name], one[name], rtol=2e-5, atol=1e-6, err_msg=name)
  assert int(eight_state.step) == 3
  for one, eight in zip(jax.tree_util.tree_leaves(one_state.params),
                        jax.tree_util.tree_leaves(eight_state.params)):
    np.testing.assert_allclose(eight, one, rtol=1e-4, atol=1e-6)

  config.shard_optimizer_state = True
  split_state, split_history = run_steps(config, jax.devices(), batches)
  # apply_if_finite's inner state: chain(clip, adam, ...), adam's moments.
  embedding = split_state.opt_state.inner_state[1].mu["token_embedding"]
  assert tuple(embedding.sharding.spec)[:1] == (step_lib.DATA_AXIS,)
  assert embedding.addressable_shards[0].data.shape[0] == embedding.shape[0] // 8
  assert split_state.params["token_embedding"].sharding.is_fully_replicated
  for eight, split in zip(eight_history, split_history):
    for name in eight:
      np.testing.assert_allclose(split[name], eight[name], rtol=1e-6, err_msg=name)
  for eight, split in zip(jax.tree_util.tree_leaves(eight_state),
                          jax.tree_util.tree_leaves(split_state), strict=True):
    np.testing.assert_allclose(split, eight, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["amos", "electra"])
def test_training_on_real_text_lowers_both_losses(preset):
  config = learning_config(preset)
  batch = helpers.text_batch(16, config.seq_len, config.model.vocab_size, padded_rows=2)
  _, history = run_steps(config, jax.devices()[:1], [batch] * config.num_train_steps)
  first, last = history[:10], history[-10:]
  mean = lambda steps, name: np.mean([m[name] for m in steps])
  # Measured at 200 steps: MLM x0.55 (AMOS) and x0.63 (ELECTRA), RTD x0.31 and x0.20.
  assert mean(last, "mlm_loss") < 0.7 * mean(first, "mlm_loss")
  # The RTD loss starts near log(2) and must fall well below it.
  assert mean(last, "rtd_loss") < 0.5 * mean(first, "rtd_loss")
  assert mean(last, "rtd_accuracy") > 0.9
  assert all(np.isfinite(m["loss"]) for m in history)


@pytest.mark.slow
def test_gradient_accumulation_equals_the_full_batch():
  """On one device, with dropout: its full-batch step is test_eight_devices_match_one_device's
  one-device step (one compile for both), and that test covers the devices' sum."""
  config = with_dropout(helpers.tiny_config())
  config.optimizer.warmup_steps = 1
  batches = [helpers.text_batch(16, config.seq_len, config.model.vocab_size, padded_rows=r)
             for r in (4, 1)]
  config.gradient_accumulation_steps = 1
  full_state, full_history = run_steps(config, jax.devices()[:1], batches)
  config.gradient_accumulation_steps = 4
  accumulated_state, accumulated_history = run_steps(config, jax.devices()[:1], batches)
  for full, accumulated in zip(full_history, accumulated_history):
    for name in ("loss", "mlm_loss", "rtd_loss", "grad_norm", "rtd_accuracy"):
      np.testing.assert_allclose(accumulated[name], full[name], rtol=2e-5, err_msg=name)
  for full, accumulated in zip(jax.tree_util.tree_leaves(full_state.params),
                               jax.tree_util.tree_leaves(accumulated_state.params)):
    np.testing.assert_allclose(accumulated, full, rtol=1e-4, atol=1e-6)


def test_automatic_accumulation_uses_micro_batches_of_about_512_tokens_on_cpu_only():
  auto = step_lib.automatic_accumulation_steps
  assert auto(128, 128, "cpu") == 32  # 4 rows of 128.
  assert auto(32, 64, "cpu") == 4  # 8 rows of 64.
  assert auto(6, 128, "cpu") == 2  # At most 4 rows that divide 6: 3.
  assert auto(7, 128, "cpu") == 7  # Prime: single rows.
  assert auto(2, 64, "cpu") == 1  # Fewer rows than a micro-batch holds.
  assert auto(8, 2048, "cpu") == 8  # Longer than 512 tokens: single rows.
  assert auto(128, 128, "gpu") == auto(128, 128, "tpu") == 1


def test_automatic_accumulation_is_the_explicit_one_on_cpu():
  """gradient_accumulation_steps=0 builds the very program of the micro-batches it picks
  (4 rows of 128 tokens: 4 of them for 16 rows), which
  test_gradient_accumulation_equals_the_full_batch checks against the full batch."""
  def lowered(steps):
    config = helpers.tiny_config()
    config.seq_len, config.batch_size = 128, 16
    config.gradient_accumulation_steps = steps
    return programs.lower_pretraining(
        config, step_lib.make_mesh(jax.devices()[:1])).lowered.as_text()
  automatic = lowered(0)
  assert automatic == lowered(4)
  assert automatic != lowered(2)


def test_a_non_finite_gradient_skips_the_update_and_is_counted():
  config = learning_config()
  pretraining = build_lib.build(config, step_lib.make_mesh(jax.devices()[:1]))
  state = build_lib.initial_state(pretraining, config)
  key = build_lib.step_seed_key(config)
  batch = step_lib.shard_batch(
      helpers.text_batch(16, config.seq_len, config.model.vocab_size), pretraining.mesh)
  state, _ = pretraining.train_step(state, batch, key)
  before = jax.device_get(state.params)
  poisoned = state.replace(params={**state.params, "mixture": jax.tree_util.tree_map(
      lambda x: x * np.nan, state.params["mixture"])})
  after, metrics = pretraining.train_step(poisoned, batch, key)
  assert int(metrics["skipped_updates"]) == 1
  assert int(metrics["consecutive_skipped_updates"]) == 1
  # Everything but the poisoned leaf is exactly as before: no update was applied.
  np.testing.assert_array_equal(jax.device_get(after.params["rtd_head"]["kernel"]),
                                before["rtd_head"]["kernel"])
