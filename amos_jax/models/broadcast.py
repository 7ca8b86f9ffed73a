"""A broadcast whose gradient is summed by a matrix-vector product.

The gradient of a broadcast is a sum over the broadcast axes. XLA:CPU emits that sum over
the leading axes of a large tensor as a reduction that runs about 20x slower than the same sum
written as ones @ g (measured: 39 ms vs 1.7 ms for a [960, 32768] MLM bias gradient). Two
gradients in AMOS are such sums: the vocabulary bias of the MLM head (over every prediction
slot of every depth) and the relative position bias (over the batch and every layer).
"""

import functools
import math

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def broadcast_leading(x, shape: tuple[int, ...]):
  """jnp.broadcast_to(x, shape) where x's shape is a suffix of `shape` (after dropping
  leading 1s); the gradient is summed as ones @ g."""
  return jnp.broadcast_to(x, shape)


def _forward(x, shape):
  return broadcast_leading(x, shape), x.shape


def _backward(shape, x_shape, cotangent):
  # x's elements repeat once per row of the leading axes it lacks.
  rows = math.prod(shape) // math.prod(x_shape)
  summed = jnp.dot(jnp.ones((rows,), cotangent.dtype), cotangent.reshape(rows, -1),
                   preferred_element_type=jnp.float32)
  return (summed.reshape(x_shape).astype(cotangent.dtype),)


broadcast_leading.defvjp(_forward, _backward)
