"""Post-LN Transformer encoder shared by the AMOS generator and discriminator.

Shapes use suffixes: B batch, L sequence, H hidden, N heads, D head size.
"""

import functools
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


def t5_relative_position_bucket(relative_position, num_buckets: int, max_distance: int):
  """T5 bidirectional bucketing: exact buckets for small offsets, log-spaced up to max_distance."""
  num_buckets //= 2
  buckets = (relative_position > 0).astype(np.int32) * num_buckets
  distance = np.abs(relative_position)
  max_exact = num_buckets // 2
  is_small = distance < max_exact
  # Clamp below 1 before the log: small distances take the exact branch anyway.
  log_ratio = np.log(np.maximum(distance, 1).astype(np.float32) / max_exact) / np.float32(
      math.log(max_distance / max_exact))
  distance_large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(np.int32)
  distance_large = np.minimum(distance_large, num_buckets - 1)
  return buckets + np.where(is_small, distance, distance_large)


def amos_relative_position_bucket(relative_position, num_buckets: int, max_distance: int):
  """The AMOS/COCO-LM authors' bucketing, before the shift (see relative_position_buckets).

  Signed: an offset d = key - query gets sign(d) times its distance bucket; distances below
  `exact` = num_buckets / 4 keep their value, larger ones take
  exact + ceil(log(|d| / exact) / log((max_distance - 1) / exact) * (num_buckets/2 - 1 - exact)),
  capped at num_buckets/2 - 1. Computed in float32 as their PyTorch code is.
  """
  half = num_buckets // 2
  exact = half // 2
  sign = np.sign(relative_position).astype(np.int32)
  distance = np.abs(relative_position)
  log_ratio = np.log(np.maximum(distance, 1).astype(np.float32) / np.float32(exact)) / np.float32(
      math.log((max_distance - 1) / exact))
  distance_large = exact + np.ceil(log_ratio * np.float32(half - 1 - exact)).astype(np.int32)
  distance_large = np.minimum(distance_large, half - 1)
  return sign * np.where(distance < exact, distance, distance_large)


BUCKET_FUNCTIONS = {"t5_bidirectional": t5_relative_position_bucket,
                    "amos": amos_relative_position_bucket}


def relative_position_buckets(seq_len: int, num_buckets: int, max_distance: int,
                              bucket_function: str, max_positions: int) -> np.ndarray:
  """[L, L] bucket ids of query i and key j, computed once at trace time.

  "amos" ids are shifted by their minimum over the whole max_positions x max_positions table
  (the authors compute the table once for the longest input), so they start at 0 and do not
  depend on seq_len. "t5_bidirectional" ids are 0-based already.
  """
  if bucket_function not in BUCKET_FUNCTIONS:
    raise ValueError(f"relative_position_bucket_function {bucket_function!r} is not one of "
                     f"{sorted(BUCKET_FUNCTIONS)}.")
  bucket = functools.partial(BUCKET_FUNCTIONS[bucket_function], num_buckets=num_buckets,
                             max_distance=max_distance)
  positions = np.arange(seq_len)
  buckets_LxL = bucket(positions[None, :] - positions[:, None])
  if bucket_function == "amos":
    buckets_LxL = buckets_LxL - bucket(np.arange(-(max_positions - 1), max_positions)).min()
  return buckets_LxL.astype(np.int32)


class RelativePositionBias(nn.Module):
  """One learned bias per (head, bucket), shared by every layer of an encoder."""
  num_heads: int
  num_buckets: int
  max_distance: int
  bucket_function: str = "t5_bidirectional"
  max_positions: int = 512  # For the "amos" shift: the authors' table size.
  init_std: float = 0.02
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, seq_len: int):
    buckets_LxL = relative_position_buckets(seq_len, self.num_buckets, self.max_distance,
                                            self.bucket_function, self.max_positions)
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
  layer_norm_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x_BxLxH, mask_Bx1x1xL, bias_BxNxLxL, deterministic: bool,
               example_ids_B=None):
    dense = lambda features, name: nn.Dense(
        features, kernel_init=normal_init(self.init_std), dtype=self.dtype,
        param_dtype=self.param_dtype, name=name)
    layer_norm = lambda name: nn.LayerNorm(
        epsilon=self.layer_norm_eps, dtype=self.dtype, param_dtype=self.param_dtype, name=name)
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
  """Position (and token-type) embeddings, embedding LayerNorm and a stack of post-LN blocks.

  Token embeddings come in already looked up: the token matrix is shared between the
  generator and the discriminator and lives outside both encoders.

  Attributes:
    output_layers: 1-based block depths whose outputs are returned, in order.
    detach_before: 0-based block indices whose input is stop-gradient'ed, so that each
      group of blocks learns only from the losses above it (AMOS's generator).
    relative_position_bucket_function: "amos" (the AMOS/COCO-LM authors') or
      "t5_bidirectional" (amos_jax before 2026-12-04; BUCKET_FUNCTIONS).
    type_vocab_size: token-type (segment) embeddings as BERT and ELECTRA have; 0: none.
    hidden_size: the blocks' width; embeddings narrower than it (ELECTRA-Small's 128 under
      256) are projected up after their LayerNorm, as ELECTRA does. None: the embeddings'.
    remat: recompute each block's activations in the backward pass (jax.checkpoint) instead
      of keeping them; the parameters and results are the same.
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
  relative_position_bucket_function: str = "t5_bidirectional"
  layer_norm_eps: float = 1e-5
  type_vocab_size: int = 0
  hidden_size: int | None = None
  remat: bool = False
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, token_embeddings_BxLxE, padding_mask_BxL, deterministic: bool = True,
               example_ids_B=None, token_type_ids_BxL=None):
    """Hidden states after each of `output_layers`.

    example_ids_B: each example's global index in the batch, for dropout masks that do not
      depend on how the batch is split (models/dropout.py); default 0..B-1.
    token_type_ids_BxL: segment ids, with type_vocab_size > 0; None: all 0.
    """
    seq_len, embedding_size = token_embeddings_BxLxE.shape[1:]
    positions = self.param("position_embedding", normal_init(self.init_std),
                           (self.max_position_embeddings, embedding_size), self.param_dtype)
    x_BxLxE = token_embeddings_BxLxE + positions[None, :seq_len]
    if self.type_vocab_size > 0:
      types = self.param("token_type_embedding", normal_init(self.init_std),
                         (self.type_vocab_size, embedding_size), self.param_dtype)
      if token_type_ids_BxL is None:
        x_BxLxE = x_BxLxE + types[0]
      else:
        x_BxLxE = x_BxLxE + jnp.take(types, token_type_ids_BxL, axis=0)
    x_BxLxE = nn.LayerNorm(epsilon=self.layer_norm_eps, dtype=self.dtype,
                           param_dtype=self.param_dtype,
                           name="embedding_norm")(x_BxLxE.astype(self.dtype))
    x_BxLxE = ExampleDropout(self.dropout_rate)(x_BxLxE, example_ids_B, deterministic)
    hidden = self.hidden_size or embedding_size
    x_BxLxH = x_BxLxE
    if hidden != embedding_size:
      x_BxLxH = nn.Dense(hidden, kernel_init=normal_init(self.init_std), dtype=self.dtype,
                         param_dtype=self.param_dtype, name="embedding_projection")(x_BxLxE)

    padding_mask_BxL = padding_mask_BxL.astype(bool)
    mask_Bx1x1xL = padding_mask_BxL[:, None, None, :]
    bias_BxNxLxL = None
    if self.relative_position_buckets > 0:
      bias_BxNxLxL = RelativePositionBias(
          self.num_heads, self.relative_position_buckets, self.relative_position_max_distance,
          self.relative_position_bucket_function, self.max_position_embeddings, self.init_std,
          self.dtype, self.param_dtype, name="relative_position_bias")(seq_len)
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
            bias_BxNxLxL, (token_embeddings_BxLxE.shape[0],) + bias_BxNxLxL.shape[1:])
        bias_BxNxLxL = bias_BxNxLxL + padding_Bx1x1xL

    # `deterministic` (argument 4, counting the module) chooses the dropout code: static.
    block = nn.remat(TransformerBlock, static_argnums=(4,)) if self.remat else TransformerBlock
    outputs = []
    for index in range(self.num_layers):
      if index in self.detach_before:
        x_BxLxH = jax.lax.stop_gradient(x_BxLxH)
      x_BxLxH = block(
          self.num_heads, self.ffn_size, self.dropout_rate, self.attention_dropout_rate,
          self.attention_implementation, self.init_std, self.layer_norm_eps, self.dtype,
          self.param_dtype, name=f"block_{index}")(
              x_BxLxH, mask_Bx1x1xL, bias_BxNxLxL, deterministic, example_ids_B)
      if index + 1 in self.output_layers:
        outputs.append(x_BxLxH)
    return outputs
