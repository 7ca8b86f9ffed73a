"""The pretraining optimizer: the rate applied is the one logged, also after skipped updates."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from amos_jax import config_validation
from amos_jax.train import optimizer as optimizer_lib
from configs import tiny


def _config(**overrides):
  config = ml_collections.ConfigDict(dict(
      learning_rate=1.0, warmup_steps=10, b1=0.9, b2=0.98, eps=1e-6, weight_decay=0.01,
      grad_clip_norm=1.0))
  config.update(overrides)
  return config


def test_after_a_skipped_update_the_applied_rate_is_the_schedule_at_the_train_step():
  config = _config()
  schedule = optimizer_lib.learning_rate_schedule(config, num_train_steps=100)
  optimizer = optimizer_lib.make_optimizer(config, num_train_steps=100)
  # Independent reference: the same AdamW direction, fed only the finite gradients.
  direction = optax.chain(
      optax.clip_by_global_norm(config.grad_clip_norm),
      optax.scale_by_adam(b1=config.b1, b2=config.b2, eps=config.eps),
      optax.add_decayed_weights(config.weight_decay))
  params = {"kernel": jnp.array([[0.5, -1.0], [2.0, 0.25]])}
  grads = [{"kernel": jnp.array([[0.1, -0.2], [0.3, 0.05]])},
           {"kernel": jnp.array([[np.nan, 0.0], [0.0, 0.0]])},  # Skipped.
           {"kernel": jnp.array([[-0.4, 0.1], [0.2, 0.3]])}]
  state, reference_state = optimizer.init(params), direction.init(params)
  for step, grad in enumerate(grads):
    updates, state = optimizer.update(grad, state, params, step=jnp.int32(step))
    if step == 1:
      assert int(state.total_notfinite) == 1
      np.testing.assert_array_equal(updates["kernel"], 0.0)
      continue
    reference, reference_state = direction.update(grad, reference_state, params)
    # Step 2 runs at schedule(2) = 0.2 although only two updates were applied: optax's own
    # count would have given schedule(1) = 0.1, drifting from the logged learning_rate.
    np.testing.assert_allclose(updates["kernel"], -schedule(step) * reference["kernel"],
                               rtol=1e-6)
  np.testing.assert_allclose(schedule(2), 0.2, rtol=1e-6)


def test_the_schedule_warms_up_then_decays_to_zero_at_the_last_step():
  schedule = optimizer_lib.learning_rate_schedule(_config(learning_rate=1e-3), 110)
  np.testing.assert_allclose([schedule(s) for s in (0, 5, 10, 60, 110)],
                             [0.0, 5e-4, 1e-3, 5e-4, 0.0], atol=1e-9)


def test_no_weight_decay_on_biases_and_layer_norm_scales():
  params = {"dense": {"kernel": 1.0, "bias": 1.0}, "norm": {"scale": 1.0, "bias": 1.0}}
  assert optimizer_lib.weight_decay_mask(params) == {
      "dense": {"kernel": True, "bias": False}, "norm": {"scale": False, "bias": False}}


def test_the_position_bias_multiplier_scales_only_the_relative_position_bias_updates():
  params = {"generator": {"relative_position_bias": {"table": jnp.full((4, 2), 0.1)},
                          "block_0": {"kernel": jnp.full((2, 2), 0.3)}},
            "token_embedding": jnp.full((3, 2), -0.2)}
  grads = jax.tree_util.tree_map(lambda p: 0.5 * jnp.ones_like(p) + p, params)

  def first_update(multiplier):
    optimizer = optimizer_lib.make_optimizer(
        _config(position_bias_lr_multiplier=multiplier, warmup_steps=0), num_train_steps=10)
    updates, _ = optimizer.update(grads, optimizer.init(params), params, step=jnp.int32(0))
    return updates

  plain, scaled = first_update(1.0), first_update(20.0)
  np.testing.assert_allclose(scaled["generator"]["relative_position_bias"]["table"],
                             20.0 * plain["generator"]["relative_position_bias"]["table"],
                             rtol=1e-6)
  assert np.all(plain["generator"]["relative_position_bias"]["table"] != 0)
  for path in (("generator", "block_0", "kernel"), ("token_embedding",)):
    leaf = lambda tree: functools.reduce(lambda node, key: node[key], path, tree)
    np.testing.assert_array_equal(leaf(scaled), leaf(plain))


def test_a_non_positive_position_bias_multiplier_is_named():
  config = tiny.get_config()
  config.optimizer.position_bias_lr_multiplier = 0.0
  with pytest.raises(config_validation.ConfigError,
                     match="config.optimizer.position_bias_lr_multiplier=0.0: expected > 0"):
    config_validation.validate(config, 1)
