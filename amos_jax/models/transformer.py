"""Post-LN Transformer encoder shared by the AMOS generator and discriminator.

Shapes use suffixes: B batch, L sequence, H hidden, N heads, D head size.
"""

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from amos_jax.models import attention
from amos_jax.models import broadcast
from amos_jax.models.dropout import ExampleDropout


def normal_init(std: float):
  """BERT/ELECTRA initialisation: N(0, std), std 0.02 at BERT sizes (`model.init_std`)."""
  return nn.initializers.normal(stddev=std)


# For nn.Dense(dot_general=...) heads whose outputs feed losses: bf16 operands, float32
# accumulation and result (a bf16 result would be rounded before the loss sees it).
float32_dot_general = functools.partial(jax.lax.dot_general, preferred_element_type=jnp.float32)


def exact_gelu(x):
  """GELU with erf, as BERT, ELECTRA and AMOS use (not the tanh approximation)."""
  return nn.gelu(x, approximate=False)


def relative_position_bucket(relative_position, num_buckets: int, max_distance: int):
  """T5 bidirectional bucketing: exact buckets for small offsets, log-spaced up to max_distance."""
  num_buckets //= 2
  buckets = (relative_position > 0).astype(jnp.int32) * num_buckets
  distance = jnp.abs(relative_position)
  max_exact = num_buckets // 2
  is_small = distance < max_exact
  # Clamp below 1 before the log: small distances take the exact branch anyway.
  log_ratio = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact) / math.log(
      max_distance / max_exact)
  distance_large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(jnp.int32)
  distance_large = jnp.minimum(distance_large, num_buckets - 1)
  return buckets + jnp.where(is_small, distance, distance_large)


class RelativePositionBias(nn.Module):
  """One learned bias per (head, bucket), shared by every layer of an encoder."""
  num_heads: int
  num_buckets: int
  max_distance: int
  init_std: float = 0.02
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, seq_len: int):
    positions = jnp.arange(seq_len)
    relative_LxL = positions[None, :] - positions[:, None]
    buckets_LxL = relative_position_bucket(relative_LxL, self.num_buckets, self.max_distance)
    table = self.param("table", normal_init(self.init_std), (self.num_buckets, self.num_heads),
                       self.param_dtype)
    bias_LxLxN = jnp.take(table, buckets_LxL, axis=0)
    return jnp.transpose(bias_LxLxN, (2, 0, 1))[None].astype(self.dtype)  # [1, N, L, L]


class SelfAttention(nn.Module):
  """Multi-head self-attention: amos_jax's XLA attention or cuDNN's flash attention.

  The XLA path (models/attention.py) expects padding inside `bias_BxNxLxL`; the cuDNN path
  reads it from `mask_Bx1x1xL` and takes a [1, N, L, L] bias. `attention_dropout_rate` drops
  attention probabilities (BERT, ELECTRA and AMOS use 0.1); jax's cuDNN attention has no
  dropout, so that path refuses a non-zero rate in training rather than ignore it.
  """
  num_heads: int
  dropout_rate: float
  attention_dropout_rate: float = 0.0
  implementation: str | None = None
  init_std: float = 0.02
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxLxH, mask_Bx1x1xL, bias_BxNxLxL, deterministic: bool,
               example_ids_B=None):
    hidden = x_BxLxH.shape[-1]
    head_dim = hidden // self.num_heads
    projection = lambda name, use_bias=True: nn.DenseGeneral(
        (self.num_heads, head_dim), kernel_init=normal_init(self.init_std), dtype=self.dtype,
        param_dtype=self.param_dtype, use_bias=use_bias, name=name)
    query_BxLxNxD = projection("query")(x_BxLxH)
    # No key bias: it adds q . b to every logit of a query alike, which softmax ignores, so
    # its exact gradient is zero and Adam would only turn rounding noise into updates.
    key_BxLxNxD = projection("key", use_bias=False)(x_BxLxH)
    value_BxLxNxD = projection("value")(x_BxLxH)
    if bias_BxNxLxL is not None:
      bias_BxNxLxL = bias_BxNxLxL.astype(query_BxLxNxD.dtype)
    drop_probs = not deterministic and self.attention_dropout_rate > 0
    if self.implementation == "cudnn":
      if drop_probs:
        raise ValueError(
            f"attention_dropout_rate={self.attention_dropout_rate} with cuDNN attention: "
            "jax's cuDNN attention has no dropout. Set model.attention_dropout_rate=0 (and "
            "for fine-tuning attention_dropout_rate=0) or use the XLA attention.")
      # cuDNN takes padding as sequence lengths (every amos_jax batch is right-padded). A
      # boolean mask would instead be added to the bias, making a [B, N, L, L] bias and
      # bias gradient out of the shared [1, N, L, L] one.
      lengths_B = jnp.sum(mask_Bx1x1xL[:, 0, 0, :], axis=-1, dtype=jnp.int32)
      out_BxLxNxD = jax.nn.dot_product_attention(
          query_BxLxNxD, key_BxLxNxD, value_BxLxNxD, bias=bias_BxNxLxL,
          query_seq_lengths=lengths_B, key_value_seq_lengths=lengths_B, implementation="cudnn")
    else:
      dropout = None
      if drop_probs:
        dropout = lambda probs: ExampleDropout(self.attention_dropout_rate,
                                               name="probs_dropout")(probs, example_ids_B, False)
      out_BxLxNxD = attention.dot_product_attention(
          query_BxLxNxD, key_BxLxNxD, value_BxLxNxD, bias_BxNxLxL, dropout)
    out_BxLxH = nn.DenseGeneral(
        hidden, axis=(-2, -1), kernel_init=normal_init(self.init_std), dtype=self.dtype,
        param_dtype=self.param_dtype, name="output")(out_BxLxNxD)
    return ExampleDropout(self.dropout_rate)(out_BxLxH, example_ids_B, deterministic)


class TransformerBlock(nn.Module):
  """Post-LN block: x = LN(x + attention(x)); x = LN(x + FFN(x))."""
  num_heads: int
  ffn_size: int
  dropout_rate: float
  attention_dropout_rate: float = 0.0
  attention_implementation: str | None = None
  init_std: float = 0.02
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxLxH, mask_Bx1x1xL, bias_BxNxLxL, deterministic: bool,
               example_ids_B=None):
    dense = lambda features, name: nn.Dense(
        features, kernel_init=normal_init(self.init_std), dtype=self.dtype,
        param_dtype=self.param_dtype, name=name)
    layer_norm = lambda name: nn.LayerNorm(
        epsilon=1e-5, dtype=self.dtype, param_dtype=self.param_dtype, name=name)
    attention = SelfAttention(
        self.num_heads, self.dropout_rate, self.attention_dropout_rate,
        self.attention_implementation, self.init_std, self.dtype, self.param_dtype,
        name="attention")
    x_BxLxH = layer_norm("attention_norm")(x_BxLxH + attention(
        x_BxLxH, mask_Bx1x1xL, bias_BxNxLxL, deterministic, example_ids_B))
    y_BxLxF = exact_gelu(dense(self.ffn_size, "ffn_in")(x_BxLxH))
    y_BxLxH = ExampleDropout(self.dropout_rate)(
        dense(x_BxLxH.shape[-1], "ffn_out")(y_BxLxF), example_ids_B, deterministic)
    return layer_norm("ffn_norm")(x_BxLxH + y_BxLxH)


class Encoder(nn.Module):
  """Position embeddings, embedding LayerNorm and a stack of post-LN blocks.

  Token embeddings come in already looked up: the token matrix is shared between the
  generator and the discriminator and lives outside both encoders.

  Attributes:
    output_layers: 1-based block depths whose outputs are returned, in order.
    detach_before: 0-based block indices whose input is stop-gradient'ed, so that each
      group of blocks learns only from the losses above it (AMOS's generator).
  """
  num_layers: int
  num_heads: int
  ffn_size: int
  dropout_rate: float
  max_position_embeddings: int
  relative_position_buckets: int
  relative_position_max_distance: int
  output_layers: Sequence[int]
  detach_before: Sequence[int] = ()
  attention_dropout_rate: float = 0.0
  attention_implementation: str | None = None
  init_std: float = 0.02
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, token_embeddings_BxLxH, padding_mask_BxL, deterministic: bool = True,
               example_ids_B=None):
    """Hidden states after each of `output_layers`.

    example_ids_B: each example's global index in the batch, for dropout masks that do not
      depend on how the batch is split (models/dropout.py); default 0..B-1.
    """
    seq_len, hidden = token_embeddings_BxLxH.shape[1:]
    positions = self.param("position_embedding", normal_init(self.init_std),
                           (self.max_position_embeddings, hidden), self.param_dtype)
    x_BxLxH = token_embeddings_BxLxH + positions[None, :seq_len]
    x_BxLxH = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, param_dtype=self.param_dtype,
                           name="embedding_norm")(x_BxLxH.astype(self.dtype))
    x_BxLxH = ExampleDropout(self.dropout_rate)(x_BxLxH, example_ids_B, deterministic)

    padding_mask_BxL = padding_mask_BxL.astype(bool)
    mask_Bx1x1xL = padding_mask_BxL[:, None, None, :]
    bias_BxNxLxL = None
    if self.relative_position_buckets > 0:
      bias_BxNxLxL = RelativePositionBias(
          self.num_heads, self.relative_position_buckets, self.relative_position_max_distance,
          self.init_std, self.dtype, self.param_dtype, name="relative_position_bias")(seq_len)
    if self.attention_implementation != "cudnn":
      # The XLA attention reads padding from its additive bias, built here once for all
      # layers. The relative bias is broadcast over the batch here too, so that its gradient
      # from all layers is summed over the batch by one fast product (models/broadcast.py).
      # cuDNN takes the [1, N, L, L] bias and the padding as lengths, and sums the gradient.
      padding_Bx1x1xL = attention.padding_bias(padding_mask_BxL, self.dtype)
      if bias_BxNxLxL is None:
        bias_BxNxLxL = padding_Bx1x1xL
      else:
        bias_BxNxLxL = broadcast.broadcast_leading(
            bias_BxNxLxL, (token_embeddings_BxLxH.shape[0],) + bias_BxNxLxL.shape[1:])
        bias_BxNxLxL = bias_BxNxLxL + padding_Bx1x1xL

    outputs = []
    for index in range(self.num_layers):
      if index in self.detach_before:
        x_BxLxH = jax.lax.stop_gradient(x_BxLxH)
      x_BxLxH = TransformerBlock(
          self.num_heads, self.ffn_size, self.dropout_rate, self.attention_dropout_rate,
          self.attention_implementation, self.init_std, self.dtype, self.param_dtype,
          name=f"block_{index}")(x_BxLxH, mask_Bx1x1xL, bias_BxNxLxL, deterministic,
                                 example_ids_B)
      if index + 1 in self.output_layers:
        outputs.append(x_BxLxH)
    return outputs
