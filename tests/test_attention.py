"""amos_jax's XLA attention against jax.nn.dot_product_attention, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from amos_jax.models import attention


def inputs(dtype=jnp.float32):
  keys = jax.random.split(jax.random.key(0), 4)
  q, k, v = (jax.random.normal(key, (2, 16, 4, 8), dtype) for key in keys[:3])
  relative_bias = jax.random.normal(keys[3], (2, 4, 16, 16))
  mask = jnp.arange(16)[None, :] < jnp.array([[16], [11]])  # Second row: 5 padded keys.
  return q, k, v, relative_bias, mask


def ours(q, k, v, relative_bias, mask):
  bias = relative_bias + attention.padding_bias(mask, jnp.float32)
  return attention.dot_product_attention(q, k, v, bias)


def reference(q, k, v, relative_bias, mask):
  return jax.nn.dot_product_attention(q, k, v, bias=relative_bias, mask=mask[:, None, None, :],
                                      implementation="xla")


def test_matches_jax_attention_with_padding_and_bias():
  np.testing.assert_allclose(ours(*inputs()), reference(*inputs()), atol=1e-5)


def test_gradients_match_jax_attention():
  q, k, v, relative_bias, mask = inputs()
  weights = jax.random.normal(jax.random.key(5), q.shape)
  # Only real query rows: jax and amos_jax agree there; padded rows are never read.
  row_mask = mask[:, :, None, None]
  loss = lambda f: lambda q, k, v, b: jnp.sum(jnp.where(row_mask, f(q, k, v, b, mask), 0) * weights)
  got = jax.grad(loss(ours), argnums=(0, 1, 2, 3))(q, k, v, relative_bias)
  expected = jax.grad(loss(reference), argnums=(0, 1, 2, 3))(q, k, v, relative_bias)
  for name, g, e in zip(["query", "key", "value", "bias"], got, expected):
    np.testing.assert_allclose(g, e, atol=1e-5, err_msg=name)


def test_padded_keys_get_exactly_zero_weight():
  q, k, v, relative_bias, mask = inputs()
  other_k = k.at[1, 11:].set(100.0)
  other_v = v.at[1, 11:].set(-100.0)
  np.testing.assert_array_equal(ours(q, k, v, relative_bias, mask)[1],
                                ours(q, other_k, other_v, relative_bias, mask)[1])


def test_softmax_backward_equals_autodiff():
  logits = jax.random.normal(jax.random.key(0), (3, 7)) * 4
  cotangent = jax.random.normal(jax.random.key(1), (3, 7))
  _, vjp = jax.vjp(attention.softmax, logits)
  _, reference_vjp = jax.vjp(lambda x: jax.nn.softmax(x, axis=-1), logits)
  np.testing.assert_allclose(vjp(cotangent)[0], reference_vjp(cotangent)[0], atol=1e-6)


def test_bfloat16_inputs_keep_their_dtype_and_stay_close():
  q, k, v, relative_bias, mask = inputs()
  low = ours(q.astype(jnp.bfloat16), k.astype(jnp.bfloat16), v.astype(jnp.bfloat16),
             relative_bias, mask)
  assert low.dtype == jnp.bfloat16
  np.testing.assert_allclose(low.astype(jnp.float32), ours(q, k, v, relative_bias, mask),
                             atol=0.05)
