"""Dropout masks that depend on the example, not on how the batch is split."""

import jax
import jax.numpy as jnp
import numpy as np

from amos_jax.models.dropout import ExampleDropout


def test_each_example_s_mask_depends_on_its_id_only():
  x = jnp.ones((8, 5, 7))
  module = ExampleDropout(0.4)
  rngs = {"dropout": jax.random.key(0)}
  ids = jnp.arange(8) + 100
  full = module.apply({}, x, ids, False, rngs=rngs)
  for rows in (slice(0, 2), slice(3, 8), slice(5, 6)):
    np.testing.assert_array_equal(module.apply({}, x[rows], ids[rows], False, rngs=rngs),
                                  full[rows])
  assert not np.array_equal(full[0], full[1])  # Different examples, different masks.


def test_inverted_dropout_keeps_the_mean_and_drops_the_rate():
  x = jnp.ones((4, 100, 100))
  out = np.asarray(ExampleDropout(0.25).apply({}, x, None, False,
                                              rngs={"dropout": jax.random.key(1)}))
  assert set(np.unique(out)) == {0.0, np.float32(1 / 0.75)}
  np.testing.assert_allclose((out == 0).mean(), 0.25, atol=0.01)
  np.testing.assert_array_equal(ExampleDropout(0.25).apply({}, x, None, True), x)
