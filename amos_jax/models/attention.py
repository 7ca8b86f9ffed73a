"""Scaled dot-product attention for XLA (CPU, TPU, GPU without cuDNN), with a lean backward.

jax.nn.dot_product_attention(implementation="xla") scales the [B, N, T, S] logits, selects
the padding mask into them in every layer, and differentiates its softmax through the
division, so XLA:CPU spends more time on the score-sized element-wise work than on the two
attention products. Here the 1/sqrt(D) scale goes on the [B, T, N, D] queries, padding
arrives already folded into the additive bias (once per encoder, see `padding_bias`), and
the softmax backward is the closed form p * (g - sum(g * p)), saving only p. On CPU this made
the small preset's 16-row training micro-step 3.5% faster than jax's XLA attention.
"""

import jax
import jax.numpy as jnp

# Logit offset of padded keys: exp underflows to exactly 0, and adding it to a bias or a
# logit stays finite in float32 and bfloat16.
_PADDING_LOGIT = -1e9


def padding_bias(mask_BxL, dtype) -> jax.Array:
  """[B, 1, 1, L] additive bias: 0 for real keys, a large negative number for padding."""
  return jnp.where(mask_BxL, 0.0, _PADDING_LOGIT).astype(dtype)[:, None, None, :]


@jax.custom_vjp
def softmax(logits):
  """Softmax over the last axis, float32; backward from the probabilities alone."""
  return jax.nn.softmax(logits, axis=-1)


def _softmax_forward(logits):
  probs = jax.nn.softmax(logits, axis=-1)
  return probs, probs


def _softmax_backward(probs, cotangent):
  return (probs * (cotangent - jnp.sum(cotangent * probs, axis=-1, keepdims=True)),)


softmax.defvjp(_softmax_forward, _softmax_backward)


def dot_product_attention(query_BxTxNxD, key_BxSxNxD, value_BxSxNxD, bias_BxNxTxS,
                          dropout=None):
  """softmax(q k^T / sqrt(D) + bias) v, with the logits and softmax in float32.

  dropout: None, or a function applied to the [B, N, T, S] probabilities (training).
  """
  scale = query_BxTxNxD.shape[-1] ** -0.5
  query_BxTxNxD = query_BxTxNxD * jnp.asarray(scale, query_BxTxNxD.dtype)
  logits_BxNxTxS = jnp.einsum("btnd,bsnd->bnts", query_BxTxNxD, key_BxSxNxD,
                              preferred_element_type=jnp.float32)
  probs_BxNxTxS = softmax(logits_BxNxTxS + bias_BxNxTxS.astype(jnp.float32))
  if dropout is not None:
    probs_BxNxTxS = dropout(probs_BxNxTxS)
  return jnp.einsum("bnts,bsnd->btnd", probs_BxNxTxS.astype(value_BxSxNxD.dtype),
                    value_BxSxNxD)
