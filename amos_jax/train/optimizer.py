"""AdamW with linear warmup and linear decay, global-norm clipping (ELECTRA / COCO-LM recipe).

The learning rate is a function of the TRAIN step, passed to every update (`step=`), not of
an optimizer-internal count: optax's schedule count stands still while non-finite updates are
skipped, so the rate applied would drift from the one logged (learning_rate_fn(step)) and
the schedule would end above 0. One count drives both.
"""

import jax
import jax.numpy as jnp
import ml_collections
import optax


def learning_rate_schedule(config: ml_collections.ConfigDict, num_train_steps: int):
  """Linear warmup from 0 to the peak, then linear decay to 0 at num_train_steps."""
  warmup_steps = min(config.warmup_steps, num_train_steps)
  return optax.join_schedules([
      optax.linear_schedule(0.0, config.learning_rate, max(warmup_steps, 1)),
      optax.linear_schedule(config.learning_rate, 0.0,
                            max(num_train_steps - warmup_steps, 1)),
  ], boundaries=[warmup_steps])


def weight_decay_mask(params):
  """Decay every weight matrix and embedding; never LayerNorm scales or biases."""
  def decays(path, _):
    return path[-1].key not in ("bias", "scale")
  return jax.tree_util.tree_map_with_path(decays, params)


# The T5-style relative position bias tables (models/transformer.py), by parameter name.
RELATIVE_POSITION_BIAS = "relative_position_bias"


def learning_rate_multipliers(params, position_bias_multiplier: float):
  """1 for every parameter but the relative position bias tables, which get
  `position_bias_multiplier`.

  Adam moves each parameter by about the learning rate per step, whatever its gradient's
  size. A bias table entry is one logit offset shared by every query at that distance, so at
  lr 1e-3 it takes thousands of steps to make attention local (an offset of about 3), and
  until then a small MLM sits at the unigram distribution (docs/quality.md).
  """
  def multiplier(path, _):
    names = [getattr(entry, "key", None) for entry in path]
    return position_bias_multiplier if RELATIVE_POSITION_BIAS in names else 1.0
  return jax.tree_util.tree_map_with_path(multiplier, params)


def scale_by_multipliers(multipliers_fn) -> optax.GradientTransformation:
  """Multiplies each parameter's update by multipliers_fn(params)'s matching leaf."""

  def update(updates, state, params=None):
    multipliers = multipliers_fn(updates)
    return jax.tree_util.tree_map(lambda u, m: (u * m).astype(u.dtype), updates,
                                  multipliers), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def scale_by_step_schedule(schedule) -> optax.GradientTransformationExtraArgs:
  """Multiplies updates by -schedule(step), `step` being the train step given to update()."""

  def update(updates, state, params=None, *, step, **extra_args):
    del params, extra_args
    rate = jnp.asarray(schedule(step), jnp.float32)
    return jax.tree_util.tree_map(lambda u: (-rate * u).astype(u.dtype), updates), state

  return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update)


# Larger than any run: the training loop, not optax, decides when to give up (optax would
# apply the non-finite update once its limit is passed).
_NEVER_APPLY_NONFINITE = 2**30


def make_optimizer(config: ml_collections.ConfigDict, num_train_steps: int):
  """The `optimizer` section of the config as an optax transformation whose update takes the
  train step: `optimizer.update(grads, opt_state, params, step=state.step)`.

  AdamW is spelled out (adam, decoupled weight decay, per-parameter multipliers, then the
  rate) so that the rate reads the train step. Updates whose gradients are not finite are skipped and counted
  (`nonfinite_counts`).
  """
  position_bias_multiplier = config.get("position_bias_lr_multiplier", 1.0)
  multipliers = []
  if position_bias_multiplier != 1.0:
    multipliers = [scale_by_multipliers(
        lambda tree: learning_rate_multipliers(tree, position_bias_multiplier))]
  return optax.apply_if_finite(optax.chain(
      optax.clip_by_global_norm(config.grad_clip_norm),
      optax.scale_by_adam(b1=config.b1, b2=config.b2, eps=config.eps),
      optax.add_decayed_weights(config.weight_decay, mask=weight_decay_mask),
      *multipliers,
      scale_by_step_schedule(learning_rate_schedule(config, num_train_steps)),
  ), max_consecutive_errors=_NEVER_APPLY_NONFINITE)


def nonfinite_counts(opt_state: optax.ApplyIfFiniteState) -> dict:
  """Skipped updates: in a row now, and in total."""
  return {"consecutive_skipped_updates": opt_state.notfinite_count,
          "skipped_updates": opt_state.total_notfinite}
