"""Dropout whose mask for an example depends on that example alone.

Each example's mask is drawn from the module's dropout key folded with the example's GLOBAL
index in the batch. With the same base key on every device and micro-batch, a step then
drops the same units whatever the device count or gradient accumulation, so sharded and
accumulated steps equal the single-device step with dropout on, and a resumed run (the key
is folded with the step) continues the same stream.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


class ExampleDropout(nn.Module):
  """Inverted dropout of `rate` over [B, ...]; `example_ids_B` default to 0..B-1."""
  rate: float

  @nn.compact
  def __call__(self, x, example_ids_B=None, deterministic: bool = True):
    if deterministic or self.rate == 0.0:
      return x
    key = self.make_rng("dropout")
    if example_ids_B is None:
      example_ids_B = jnp.arange(x.shape[0])
    keep_prob = 1.0 - self.rate
    keep = jax.vmap(lambda index: jax.random.bernoulli(
        jax.random.fold_in(key, index), keep_prob, x.shape[1:]))(example_ids_B)
    return jnp.where(keep, x / jnp.asarray(keep_prob, x.dtype), jnp.zeros_like(x))
