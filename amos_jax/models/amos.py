"""The AMOS networks: shared token embedding, multi-depth generator, mixture, discriminator.

The module only holds parameters and computes network outputs; the objective that wires
them together (masking, Gumbel sampling, gradient reversal, losses) is in
`amos_jax/objective.py`, which calls the methods below through `model.apply`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from amos_jax import special_tokens
from amos_jax.models import broadcast
from amos_jax.models import transformer


# Architecture options a model config may lack, with the value that rebuilds the models
# written before each option existed (configs/default.py sets every one for new runs).
ARCHITECTURE_DEFAULTS = {
    "attention_dropout_rate": 0.0,
    "relative_position_bucket_function": "t5_bidirectional",
    "layer_norm_eps": 1e-5,
    "type_vocab_size": 0,
    "pad_token_id": special_tokens.PAD_ID,
    "sep_token_id": special_tokens.SEP_ID,
    "embedding_size": 0,
    "classifier_activation": "tanh",
}


def architecture_option(config: ml_collections.ConfigDict, key: str):
  """config[key], or for a config written before the option existed, its old behaviour."""
  return config.get(key, ARCHITECTURE_DEFAULTS[key])


def with_architecture_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of a model config with every architecture option set: a config written before an
  option existed gets the value that rebuilds the model it was trained as."""
  complete = ml_collections.ConfigDict(config.to_dict())
  for key in ARCHITECTURE_DEFAULTS:
    if key not in complete:
      complete[key] = ARCHITECTURE_DEFAULTS[key]
  return complete


def token_types(config: ml_collections.ConfigDict, token_ids_BxL):
  """Segment ids as BERT's tokenizer gives them: 0 up to and including the first [SEP], then
  1 (capped at type_vocab_size - 1); None without token-type embeddings. Derived from the ids,
  so every caller's `[CLS] a [SEP] b [SEP]` rows get them without passing them, and
  pretraining (objective.py) sees the types fine-tuning and inference see."""
  type_vocab_size = architecture_option(config, "type_vocab_size")
  if type_vocab_size == 0:
    return None
  is_sep_BxL = token_ids_BxL == architecture_option(config, "sep_token_id")
  seps_before_BxL = jnp.cumsum(is_sep_BxL, axis=1) - is_sep_BxL
  return jnp.minimum(seps_before_BxL, type_vocab_size - 1).astype(jnp.int32)


def embedding_size(config: ml_collections.ConfigDict) -> int:
  """Width of the token embedding: `embedding_size`, or the hidden size when 0."""
  return architecture_option(config, "embedding_size") or config.hidden_size


def _encoder(config: ml_collections.ConfigDict, *, num_layers, dropout_rate,
             attention_dropout_rate, output_layers, detach_before, name):
  return transformer.Encoder(
      num_layers=num_layers,
      num_heads=config.num_heads,
      ffn_size=config.ffn_size,
      dropout_rate=dropout_rate,
      attention_dropout_rate=attention_dropout_rate,
      max_position_embeddings=config.max_position_embeddings,
      relative_position_buckets=config.relative_position_buckets,
      relative_position_max_distance=config.relative_position_max_distance,
      output_layers=tuple(output_layers),
      detach_before=tuple(detach_before),
      attention_implementation=config.attention_implementation,
      init_std=config.init_std,
      relative_position_bucket_function=architecture_option(
          config, "relative_position_bucket_function"),
      layer_norm_eps=architecture_option(config, "layer_norm_eps"),
      type_vocab_size=architecture_option(config, "type_vocab_size"),
      hidden_size=config.hidden_size,
      # A compute setting, not architecture: configs written before it recompute nothing.
      remat=config.get("remat", False),
      dtype=jnp.dtype(config.dtype),
      param_dtype=jnp.dtype(config.param_dtype),
      name=name)


def generator_detach_points(mlm_layers):
  """0-based blocks whose input is detached: the first block above each MLM depth but the top.

  With mlm_layers [4, 6, 8], blocks 4 and 6 (0-based) get detached inputs, so blocks 0-3 learn
  only from the depth-4 MLM, 4-5 from depth 6 and 6-7 from depth 8.
  """
  return tuple(sorted(mlm_layers)[:-1])


@jax.custom_vjp
def tied_output_logits(x_NxH, embedding_VxH):
  """x @ E^T: vocabulary logits from the tied token embedding, accumulated and returned in
  float32 whatever the operands' dtype (bf16 logits would be quantised to steps of 0.0625
  at |logit| 8-16, coarsening the cross-entropy and the Gumbel sample)."""
  return jax.lax.dot_general(x_NxH, embedding_VxH, (((1,), (1,)), ((), ())),
                             preferred_element_type=jnp.float32)


def _tied_output_forward(x_NxH, embedding_VxH):
  return tied_output_logits(x_NxH, embedding_VxH), (x_NxH, embedding_VxH)


def _tied_output_backward(residuals, grad_NxV):
  x_NxH, embedding_VxH = residuals
  # The float32 gradient goes back in the operands' dtype, so bf16 runs keep bf16 products.
  grad_NxV = grad_NxV.astype(x_NxH.dtype)
  # dE = (x^T g)^T: a plain [H, N] x [N, V] product and a transpose of the [H, V] result.
  # Autodiff's g^T x first copies the [N, V] gradient into [V, N] layout (4x larger).
  grad_embedding_VxH = jnp.matmul(x_NxH.T, grad_NxV, preferred_element_type=jnp.float32).T
  grad_x_NxH = jnp.matmul(grad_NxV, embedding_VxH, preferred_element_type=jnp.float32)
  return grad_x_NxH.astype(x_NxH.dtype), grad_embedding_VxH.astype(embedding_VxH.dtype)


tied_output_logits.defvjp(_tied_output_forward, _tied_output_backward)


@jax.custom_vjp
def embed_sampled_tokens(embedding_VxH, one_hot_NxV, sampled_N):
  """E[sampled]: an exact lookup forward, with the straight-through gradient of one_hot @ E.

  The one-hot is exactly one_hot(sampled), so the value is that of one_hot @ E, but a matmul
  is exact only in float32: GPUs compute it in TF32 and TPUs in bf16 by default, and the
  rounded rows would tell the discriminator which positions were masked. Backward it is the
  product: g @ E^T into the one-hot (the path of the reversed gradient into the mixture) and
  the ordinary lookup gradient, a scatter-add of g, into E.
  """
  del one_hot_NxV  # Only its gradient is defined here.
  return jnp.take(embedding_VxH, sampled_N, axis=0)


def _embed_sampled_forward(embedding_VxH, one_hot_NxV, sampled_N):
  return embed_sampled_tokens(embedding_VxH, one_hot_NxV, sampled_N), (
      embedding_VxH, sampled_N, jnp.zeros((), one_hot_NxV.dtype))


def _embed_sampled_backward(residuals, grad_NxH):
  embedding_VxH, sampled_N, one_hot_dtype = residuals
  grad_embedding_VxH = jnp.zeros_like(embedding_VxH).at[sampled_N].add(
      grad_NxH.astype(embedding_VxH.dtype))
  grad_one_hot_NxV = jnp.matmul(grad_NxH, embedding_VxH.T, preferred_element_type=jnp.float32)
  return grad_embedding_VxH, grad_one_hot_NxV.astype(one_hot_dtype.dtype), None


embed_sampled_tokens.defvjp(_embed_sampled_forward, _embed_sampled_backward)


class MlmHead(nn.Module):
  """Dense, GELU, LayerNorm, then logits tied to the token embedding plus a vocab bias.

  The dense layer maps to the embedding's width (ELECTRA's generator head does too), so the
  tied projection works when the embedding is narrower than the hidden size.
  """
  embedding_size: int
  vocab_size: int
  init_std: float = 0.02
  layer_norm_eps: float = 1e-5
  dtype: jnp.dtype = jnp.float32
  param_dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, hidden_BxPxH, token_embedding_VxH):
    x_BxPxH = nn.Dense(self.embedding_size, kernel_init=transformer.normal_init(self.init_std),
                       dtype=self.dtype, param_dtype=self.param_dtype,
                       name="dense")(hidden_BxPxH)
    x_BxPxH = nn.LayerNorm(epsilon=self.layer_norm_eps, dtype=self.dtype,
                           param_dtype=self.param_dtype,
                           name="norm")(transformer.exact_gelu(x_BxPxH))
    bias_V = self.param("bias", nn.initializers.zeros, (self.vocab_size,), self.param_dtype)
    x_NxH = x_BxPxH.reshape(-1, x_BxPxH.shape[-1])
    logits_NxV = tied_output_logits(x_NxH, token_embedding_VxH.astype(self.dtype))
    logits_BxPxV = logits_NxV.reshape(x_BxPxH.shape[:-1] + (-1,))
    return logits_BxPxV + broadcast.broadcast_leading(bias_V, logits_BxPxV.shape)


class AmosModel(nn.Module):
  """All AMOS parameters in one tree: token_embedding, generator, mlm_head, mixture,
  discriminator and rtd_head. Each method is one network the objective calls."""
  config: ml_collections.ConfigDict

  def setup(self):
    config = self.config
    dtype, param_dtype = jnp.dtype(config.dtype), jnp.dtype(config.param_dtype)
    mlm_layers = tuple(sorted(config.generator.mlm_layers))
    self.token_embedding = self.param(
        "token_embedding", transformer.normal_init(config.init_std),
        (config.vocab_size, embedding_size(config)), param_dtype)
    self.generator = _encoder(
        config, num_layers=max(mlm_layers), dropout_rate=config.generator.dropout_rate,
        attention_dropout_rate=config.generator.attention_dropout_rate,
        output_layers=mlm_layers, detach_before=generator_detach_points(mlm_layers),
        name="generator")
    self.mlm_head = MlmHead(embedding_size(config), config.vocab_size, config.init_std,
                            architecture_option(config, "layer_norm_eps"), dtype, param_dtype)
    # AMOS: ONE scoring vector w, no bias, shared by all depths: m_k = w . f_k.
    self.mixture = nn.Dense(1, use_bias=False,
                            kernel_init=transformer.normal_init(config.init_std),
                            dtype=jnp.float32, param_dtype=param_dtype)
    self.discriminator = _encoder(
        config, num_layers=config.num_layers, dropout_rate=config.dropout_rate,
        attention_dropout_rate=config.attention_dropout_rate,
        output_layers=(config.num_layers,), detach_before=(), name="discriminator")
    self.rtd_head = nn.Dense(1, kernel_init=transformer.normal_init(config.init_std),
                             dtype=dtype, param_dtype=param_dtype,
                             dot_general=transformer.float32_dot_general)

  def embed(self, token_ids_BxL):
    """Plain lookup in the shared token embedding."""
    return jnp.take(self.token_embedding, token_ids_BxL, axis=0)

  def embed_sample(self, one_hot_BxPxV, sampled_BxP):
    """E[sampled] exactly, on any backend; backward as one_hot @ E (embed_sampled_tokens)."""
    return embed_sampled_tokens(self.token_embedding, one_hot_BxPxV, sampled_BxP)

  def generator_hidden(self, token_embeddings_BxLxH, padding_mask_BxL, deterministic=True,
                       example_ids_B=None, token_type_ids_BxL=None):
    """Hidden states after each MLM depth, shallowest first: a list of [B, L, H].

    example_ids_B: global example indices, for split-independent dropout (models/dropout.py).
    token_type_ids_BxL: token_types of the original ids, with token-type embeddings.
    """
    return self.generator(token_embeddings_BxLxH, padding_mask_BxL, deterministic,
                          example_ids_B, token_type_ids_BxL)

  def mlm_logits(self, hidden_BxPxH):
    """The shared MLM head at gathered (masked) positions: [B, P, V] float32 logits."""
    return self.mlm_head(hidden_BxPxH, self.token_embedding)

  def mixture_logits(self, hidden_BxPxH):
    """m = w . f for one depth's hidden states: [B, P] float32."""
    return self.mixture(hidden_BxPxH.astype(jnp.float32))[..., 0]

  def discriminate(self, token_embeddings_BxLxH, padding_mask_BxL, deterministic=True,
                   example_ids_B=None, token_type_ids_BxL=None):
    """Replaced-token-detection logits for every position: [B, L] float32."""
    (hidden_BxLxH,) = self.discriminator(token_embeddings_BxLxH, padding_mask_BxL,
                                         deterministic, example_ids_B, token_type_ids_BxL)
    return self.rtd_head(hidden_BxLxH)[..., 0]

  def __call__(self, token_ids_BxL, padding_mask_BxL, deterministic=True):
    """Touches every parameter once; used by `init` only."""
    embeddings_BxLxH = self.embed(token_ids_BxL)
    hidden = self.generator_hidden(embeddings_BxLxH, padding_mask_BxL, deterministic)
    mlm_logits = [self.mlm_logits(h[:, :1]) for h in hidden]
    mixture_logits = [self.mixture_logits(h[:, :1]) for h in hidden]
    rtd_logits = self.discriminate(embeddings_BxLxH, padding_mask_BxL, deterministic)
    return mlm_logits, mixture_logits, rtd_logits


def init_params(model: AmosModel, rng: jax.Array, seq_len: int):
  """Initial parameter tree for a [1, seq_len] input."""
  token_ids = jnp.zeros((1, seq_len), jnp.int32)
  return model.init(rng, token_ids, jnp.ones_like(token_ids))["params"]


class TextEncoder(nn.Module):
  """The discriminator alone, as users fine-tune and deploy it.

  Its parameter tree {token_embedding, discriminator} is the subset of AmosModel's with the
  same names, so a pretrained encoder is `{k: params[k] for k in ENCODER_PARAMS}`.
  """
  config: ml_collections.ConfigDict

  def setup(self):
    config = self.config
    self.token_embedding = self.param(
        "token_embedding", transformer.normal_init(config.init_std),
        (config.vocab_size, embedding_size(config)), jnp.dtype(config.param_dtype))
    self.discriminator = _encoder(
        config, num_layers=config.num_layers, dropout_rate=config.dropout_rate,
        attention_dropout_rate=architecture_option(config, "attention_dropout_rate"),
        output_layers=(config.num_layers,), detach_before=(), name="discriminator")

  def __call__(self, token_ids_BxL, padding_mask_BxL, deterministic=True, example_ids_B=None):
    """Final hidden states [B, L, H]."""
    embeddings_BxLxE = jnp.take(self.token_embedding, token_ids_BxL, axis=0)
    (hidden_BxLxH,) = self.discriminator(embeddings_BxLxE, padding_mask_BxL, deterministic,
                                         example_ids_B, token_types(self.config, token_ids_BxL))
    return hidden_BxLxH


ENCODER_PARAMS = ("token_embedding", "discriminator")


def encoder_params(params):
  """The TextEncoder parameters inside a full AmosModel parameter tree."""
  return {name: params[name] for name in ENCODER_PARAMS}
