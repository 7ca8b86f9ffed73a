"""Sequence classification and regression on top of the pretrained discriminator.

The head is the one the AMOS/COCO-LM authors fine-tune GLUE with (fairseq's
`ClassificationHead`): take the first ([CLS]) token, dropout, dense, tanh, dropout, then a
projection to `num_labels` outputs (1 for regression).

Parameter tree of SequenceClassifier:
  encoder/token_embedding, encoder/discriminator/...   a TextEncoder tree, unchanged
  head/dense/{kernel, bias}                            [H, H], [H]
  head/projection/{kernel, bias}                       [H, num_labels], [num_labels]
so a pretrained encoder drops in as `{"encoder": encoder_params(amos_params), "head": ...}`.
"""

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from amos_jax.models import amos
from amos_jax.models import dropout
from amos_jax.models import transformer


# The head's activation: the authors' fairseq head uses tanh, their Hugging Face one GELU.
ACTIVATIONS = {"tanh": jnp.tanh, "gelu": transformer.exact_gelu}


class ClassificationHead(nn.Module):
  """First-token pooling: dropout, dense, tanh (or GELU), dropout, projection to num_labels."""
  hidden_size: int
  num_labels: int
  dropout_rate: float
  init_std: float = 0.02
  activation: str = "tanh"
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, hidden_BxLxH, deterministic=True, example_ids_B=None):
    """example_ids_B: global example indices, for split-independent dropout."""
    dense = lambda features, name: nn.Dense(
        features, kernel_init=transformer.normal_init(self.init_std), dtype=self.dtype,
        param_dtype=self.param_dtype, name=name)
    x_BxH = dropout.ExampleDropout(self.dropout_rate)(hidden_BxLxH[:, 0], example_ids_B,
                                                      deterministic)
    x_BxH = ACTIVATIONS[self.activation](dense(self.hidden_size, "dense")(x_BxH))
    x_BxH = dropout.ExampleDropout(self.dropout_rate)(x_BxH, example_ids_B, deterministic)
    # Logits are accumulated and returned in float32, so softmax and losses never see bf16.
    return nn.Dense(self.num_labels, kernel_init=transformer.normal_init(self.init_std),
                    dtype=self.dtype, param_dtype=self.param_dtype,
                    dot_general=transformer.float32_dot_general, name="projection")(x_BxH)


class SequenceClassifier(nn.Module):
  """TextEncoder (param name `encoder`) plus ClassificationHead (param name `head`)."""
  config: ml_collections.ConfigDict
  num_labels: int

  def setup(self):
    config = self.config
    self.encoder = amos.TextEncoder(config)
    self.head = ClassificationHead(
        config.hidden_size, self.num_labels, config.dropout_rate, config.init_std,
        amos.architecture_option(config, "classifier_activation"), jnp.dtype(config.dtype),
        jnp.dtype(config.param_dtype))

  def encode(self, token_ids_BxL, padding_mask_BxL, deterministic=True):
    """Final hidden states of the encoder: [B, L, H]."""
    return self.encoder(token_ids_BxL, padding_mask_BxL, deterministic)

  def __call__(self, token_ids_BxL, padding_mask_BxL, deterministic=True, example_ids_B=None):
    """Logits [B, num_labels] float32; for regression [B, 1] holds the predicted score.

    example_ids_B: global example indices, for split-independent dropout (models/dropout.py).
    """
    hidden_BxLxH = self.encoder(token_ids_BxL, padding_mask_BxL, deterministic, example_ids_B)
    return self.head(hidden_BxLxH, deterministic, example_ids_B)
