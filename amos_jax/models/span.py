"""Extractive question answering on top of the pretrained discriminator.

The AMOS/COCO-LM (and ELECTRA) SQuAD head: one linear layer from every final hidden state
to a start and an end logit. No-answer is scored at [CLS] (start = end = position 0).

Parameter tree of SpanExtractor:
  encoder/token_embedding, encoder/discriminator/...   a TextEncoder tree, unchanged
  head/projection/{kernel, bias}                       [H, 2], [2]
"""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from amos_jax.models import amos
from amos_jax.models import transformer

# Padding positions get this logit, so neither softmax nor the span search picks them.
PADDING_LOGIT = -1e9


class SpanHead(nn.Module):
  """[B, L, H] -> start and end logits [B, L] each, float32."""
  init_std: float = 0.02
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, hidden_BxLxH, padding_mask_BxL):
    # Accumulated and returned in float32, so softmax and losses never see bf16.
    logits_BxLx2 = nn.Dense(2, kernel_init=transformer.normal_init(self.init_std),
                            dtype=self.dtype, param_dtype=self.param_dtype,
                            dot_general=transformer.float32_dot_general,
                            name="projection")(hidden_BxLxH)
    logits_BxLx2 = jnp.where(padding_mask_BxL[..., None], logits_BxLx2, PADDING_LOGIT)
    return logits_BxLx2[..., 0], logits_BxLx2[..., 1]


class SpanExtractor(nn.Module):
  """TextEncoder (param name `encoder`) plus SpanHead (param name `head`)."""
  config: ml_collections.ConfigDict

  def setup(self):
    config = self.config
    self.encoder = amos.TextEncoder(config)
    self.head = SpanHead(config.init_std, jnp.dtype(config.dtype), jnp.dtype(config.param_dtype))

  def encode(self, token_ids_BxL, padding_mask_BxL, deterministic=True):
    """Final hidden states of the encoder: [B, L, H]."""
    return self.encoder(token_ids_BxL, padding_mask_BxL, deterministic)

  def __call__(self, token_ids_BxL, padding_mask_BxL, deterministic=True, example_ids_B=None):
    """(start logits, end logits), each [B, L] float32.

    example_ids_B: global example indices, for split-independent dropout (models/dropout.py).
    """
    hidden_BxLxH = self.encoder(token_ids_BxL, padding_mask_BxL, deterministic, example_ids_B)
    return self.head(hidden_BxLxH, padding_mask_BxL)
