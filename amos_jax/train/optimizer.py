"""AdamW with linear warmup and linear decay, global-norm clipping (ELECTRA / COCO-LM recipe)."""

import jax
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


# Larger than any run: the training loop, not optax, decides when to give up (optax would
# apply the non-finite update once its limit is passed).
_NEVER_APPLY_NONFINITE = 2**30


def make_optimizer(config: ml_collections.ConfigDict, num_train_steps: int):
  """The `optimizer` section of the config as an optax GradientTransformation.

  Updates whose gradients are not finite are skipped and counted (`nonfinite_counts`).
  """
  return optax.apply_if_finite(optax.chain(
      optax.clip_by_global_norm(config.grad_clip_norm),
      optax.adamw(learning_rate_schedule(config, num_train_steps), b1=config.b1, b2=config.b2,
                  eps=config.eps, weight_decay=config.weight_decay, mask=weight_decay_mask),
  ), max_consecutive_errors=_NEVER_APPLY_NONFINITE)


def nonfinite_counts(opt_state: optax.ApplyIfFiniteState) -> dict:
  """Skipped updates: in a row now, and in total."""
  return {"consecutive_skipped_updates": opt_state.notfinite_count,
          "skipped_updates": opt_state.total_notfinite}
