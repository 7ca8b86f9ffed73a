"""The AMOS objective, top to bottom beside the paper (Meng et al., ICLR 2022; AMOS.md).

1. Mask 15% of the ordinary tokens with [MASK], at a static number of slots per sequence.
2. Run the generator once: one MLM per depth k (4, 6, 8), sharing the lower blocks and ONE head.
3. Mixture: gamma_ik = softmax_k(w . f_ik) over the depth-k hidden states f_ik.
4. Mixed logits s_i = sum_k gamma_ik * stop_gradient(h_ik).
5. Sample a replacement with straight-through Gumbel-Softmax: one-hot forward,
   d softmax((s + g) / tau) backward.
6. Gradient reversal (x disc_grad_mul, -1): the mixture is trained to MAXIMISE the
   discriminator's loss.
7. The discriminator reads E[sample] at the masked slots (an exact lookup forward; backward
   the gradient of onehot @ E, the path of the reversed gradient) and predicts which tokens
   were replaced.
8. Loss = sum_k MLM_k + disc_weight * RTD.

ELECTRA is the same code with one depth and disc_grad_mul = 0.

Sharding: `loss_fn` runs on one device's slice of the batch. Every loss and metric it returns is
that slice's contribution to a global mean (a local sum divided by a GLOBAL count), so summing
the outputs over devices gives exactly the single-device value whatever the device count.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from amos_jax import special_tokens
from amos_jax.models import amos
from amos_jax.models.amos import AmosModel


# ---------------------------------------------------------------------------------------------
# 1. Masking
# ---------------------------------------------------------------------------------------------

class MaskedBatch(NamedTuple):
  input_ids: jax.Array  # [B, L] original tokens.
  padding_mask: jax.Array  # [B, L] True on real tokens.
  masked_ids: jax.Array  # [B, L] generator input: [MASK] at the chosen slots.
  positions: jax.Array  # [B, P] positions of the prediction slots.
  valid: jax.Array  # [B, P] True for slots that are really masked.
  targets: jax.Array  # [B, P] original token at each slot.


def max_predictions(seq_len: int, mask_prob: float) -> int:
  """Static number of prediction slots per sequence, so shapes never change."""
  return max(1, math.ceil(mask_prob * seq_len))


def mask_tokens(input_ids_BxL, example_keys_B, mask_prob: float,
                special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX) -> MaskedBatch:
  """Masks round(mask_prob * maskable) tokens per sequence, never a special token.

  Each sequence draws from its own key (derived from its global index in the batch), so the
  masks do not depend on how the batch is split across devices or hosts. `special`: the
  data's special ids (a converted checkpoint's when pretraining continues from one).
  """
  batch, seq_len = input_ids_BxL.shape
  num_slots = max_predictions(seq_len, mask_prob)
  maskable_BxL = ~jnp.isin(input_ids_BxL, jnp.array(special.never_masked))
  scores_BxL = jax.vmap(lambda key: jax.random.uniform(key, (seq_len,)))(example_keys_B)
  # Maskable tokens score in [0, 1), the rest -1: top_k picks maskable tokens first.
  scores_BxL = jnp.where(maskable_BxL, scores_BxL, -1.0)
  _, positions_BxP = jax.lax.top_k(scores_BxL, num_slots)
  num_to_mask_B = jnp.clip(jnp.round(mask_prob * maskable_BxL.sum(-1)), 1, num_slots)
  valid_BxP = ((jnp.arange(num_slots)[None, :] < num_to_mask_B[:, None])
               & jnp.take_along_axis(maskable_BxL, positions_BxP, axis=1))
  rows_Bx1 = jnp.arange(batch)[:, None]
  targets_BxP = jnp.take_along_axis(input_ids_BxL, positions_BxP, axis=1)
  masked_ids_BxL = input_ids_BxL.at[rows_Bx1, positions_BxP].set(
      jnp.where(valid_BxP, special.mask, targets_BxP))
  return MaskedBatch(input_ids_BxL, input_ids_BxL != special.pad, masked_ids_BxL,
                     positions_BxP, valid_BxP, targets_BxP)


# ---------------------------------------------------------------------------------------------
# 5. Straight-through Gumbel-Softmax and 6. gradient reversal
# ---------------------------------------------------------------------------------------------

def first_argmax(x, axis: int = -1):
  """jnp.argmax (first maximum) as a max-reduce and a min-reduce of the matching indices.

  XLA:CPU runs argmax's fused (value, index) reduction ~10x slower than two plain
  reductions over a [B, P, V] tensor; AMOS takes five of them per step.
  """
  axis = axis % x.ndim
  indices = jax.lax.broadcasted_iota(jnp.int32, x.shape, axis)
  is_max = x == jnp.max(x, axis=axis, keepdims=True)
  # min(..., size - 1): a row of NaNs has no maximum; keep the index in range.
  return jnp.minimum(jnp.min(jnp.where(is_max, indices, x.shape[axis]), axis=axis),
                     x.shape[axis] - 1)


def _random_bits(key, shape) -> jax.Array:
  """uint32 bits from XLA's RngBitGenerator (ThreeFry) seeded from `key`: on CPU 2.6x faster
  than jax.random's ThreeFry for the [P, V] noise of an example."""
  state = jax.random.bits(key, (4,), jnp.uint32)
  _, bits = jax.lax.rng_bit_generator(state, shape, jnp.uint32,
                                      algorithm=jax.lax.RandomAlgorithm.RNG_THREE_FRY)
  return bits


def _gumbel_from_bits(bits) -> jax.Array:
  # 23 bits as the mantissa of a float in [1, 2), minus 1: uniform on [0, 1).
  uniform = jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000),
                                         jnp.float32) - 1.0
  uniform = jnp.maximum(uniform, jnp.finfo(jnp.float32).tiny)
  return -jnp.log(-jnp.log(uniform))


def gumbel_noise(key, shape) -> jax.Array:
  """Standard Gumbel noise, float32, as jax.random.gumbel with 23 random mantissa bits."""
  return _gumbel_from_bits(_random_bits(key, shape))


def gumbel_noise_per_example(keys_B, shape) -> jax.Array:
  """[B, *shape] noise, row b drawn from keys_B[b] alone (whatever the rest of the batch).

  A loop, not vmap: vmap of RngBitGenerator draws one stream for the whole batch, so a
  row's noise would depend on its place in the batch (and on the device count). The loop
  draws only the bits, unrolled 16 examples deep; the logarithms then run once, vectorised,
  over the whole batch. On CPU this made the small preset's 16-row micro-step 3% faster than
  a `lax.map` of the whole transform (alone: 40 -> 26 ms for 16 x [20, 32768]).
  """
  _, bits = jax.lax.scan(lambda carry, key: (carry, _random_bits(key, shape)), None, keys_B,
                         unroll=min(len(keys_B), 16))
  return _gumbel_from_bits(bits)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def straight_through_gumbel_softmax(logits, gumbel_noise, temperature: float):
  """Forward: the exact one-hot of argmax(logits + g), and that argmax.

  Backward: d softmax((logits + g) / tau) for the one-hot; the ids are not differentiable.
  """
  sampled = first_argmax(logits + gumbel_noise)
  return jax.nn.one_hot(sampled, logits.shape[-1], dtype=logits.dtype), sampled


def _gumbel_forward(logits, gumbel_noise, temperature):
  # softmax((logits + g) / tau), kept as its numerator and the per-row scale 1 / (tau * sum):
  # the backward then scales [..., V] tensors only by per-row factors (XLA:CPU materialises a
  # full-size copy of a scalar 1 / tau before fusing it into a matmul's epilogue).
  inverse_temperature = jnp.full(logits.shape[:-1] + (1,), 1.0 / temperature, logits.dtype)
  scaled = (logits + gumbel_noise) * inverse_temperature
  numerator = jnp.exp(scaled - jnp.max(scaled, axis=-1, keepdims=True))
  row_scale = 1.0 / jnp.sum(numerator, axis=-1, keepdims=True)
  return (straight_through_gumbel_softmax(logits, gumbel_noise, temperature),
          (numerator, row_scale))


def _gumbel_backward(temperature, residuals, cotangents):
  numerator, row_scale = residuals
  cotangent, _ = cotangents  # The ids' cotangent is float0 zeros.
  # Vector-Jacobian product of softmax(z / tau): soft * (g - <g, soft>) / tau, with
  # soft = numerator * row_scale.
  mean = jnp.sum(cotangent * numerator, axis=-1, keepdims=True) * row_scale
  return numerator * ((cotangent - mean) * (row_scale / temperature)), None


straight_through_gumbel_softmax.defvjp(_gumbel_forward, _gumbel_backward)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def grad_multiply(x, multiplier: float):
  """Identity forward; the gradient is multiplied by `multiplier` backward (-1: reversal)."""
  return x


grad_multiply.defvjp(lambda x, multiplier: (x, None),
                     lambda multiplier, _, cotangent: (cotangent * multiplier,))


# ---------------------------------------------------------------------------------------------
# 2-8. Generators, mixture, sampling, discriminator and losses
# ---------------------------------------------------------------------------------------------

class Counts(NamedTuple):
  """Global (all devices) denominators of the means."""
  masked: jax.Array  # Really masked slots.
  tokens: jax.Array  # Non-pad tokens.


def local_counts(batch: MaskedBatch) -> Counts:
  return Counts(batch.valid.sum().astype(jnp.float32),
                batch.padding_mask.sum().astype(jnp.float32))


def _gather_BxPxH(hidden_BxLxH, positions_BxP):
  return jnp.take_along_axis(hidden_BxLxH, positions_BxP[..., None], axis=1)


# Shapes below: [..., V] logits, [...] integer targets.

def _target_logit(logits_xV, targets_x):
  return jnp.take_along_axis(logits_xV, targets_x[..., None], axis=-1)[..., 0]


@jax.custom_vjp
def _cross_entropy(logits_xV, targets_x):
  """-log softmax(logits)[target]. Its gradient, softmax - one_hot(target), is written out:
  autodiff of the gather would scatter into a zeroed [B, P, V] buffer first."""
  loss, _ = _cross_entropy_forward(logits_xV, targets_x)
  return loss


def _cross_entropy_forward(logits_xV, targets_x):
  log_normalizer_x = jax.nn.logsumexp(logits_xV, axis=-1)
  loss = log_normalizer_x - _target_logit(logits_xV, targets_x)
  return loss, (logits_xV, log_normalizer_x, targets_x)


def _cross_entropy_backward(residuals, cotangent_x):
  logits_xV, log_normalizer_x, targets_x = residuals
  softmax_xV = jnp.exp(logits_xV - log_normalizer_x[..., None])
  vocab_ids = jax.lax.broadcasted_iota(jnp.int32, logits_xV.shape, logits_xV.ndim - 1)
  one_hot_xV = (vocab_ids == targets_x[..., None]).astype(logits_xV.dtype)
  grad = cotangent_x[..., None] * (softmax_xV - one_hot_xV)
  return grad, None  # Integer targets: no gradient.


_cross_entropy.defvjp(_cross_entropy_forward, _cross_entropy_backward)


def _target_is_top(logits_xV, targets_x):
  """argmax(logits) == target without an argmax (ties count as correct)."""
  return _target_logit(logits_xV, targets_x) >= jnp.max(logits_xV, axis=-1)


class Forward(NamedTuple):
  """Everything the AMOS forward pass computes that the losses or tests read."""
  mlm_logits_KxBxPxV: jax.Array  # h_k: float32 per depth k, shallowest first.
  gamma: jax.Array  # [B, P, K] mixture weights over depths.
  one_hot: jax.Array  # [B, P, V] the straight-through sample (after gradient reversal).
  sampled: jax.Array  # [B, P] sampled token ids.
  discriminator_input: jax.Array  # [B, L, H] the discriminator's input embeddings.
  replaced: jax.Array  # [B, L] 1.0 where the corrupted token differs from the original.
  rtd_logits: jax.Array  # [B, L] replaced-token-detection logits.


def forward(params, model: AmosModel, config: ml_collections.ConfigDict, batch: MaskedBatch,
            sample_keys_B, dropout_key, deterministic: bool, example_ids_B=None) -> Forward:
  """Steps 2-7: generators, mixture, straight-through sample, reversal, discriminator.

  Args:
    config: the `objective` section of the config.
    sample_keys_B: one Gumbel-noise key per example (from its global index).
    dropout_key: the same on every device; each example's masks fold in `example_ids_B`,
      its global index in the batch (models/dropout.py).
  """
  apply = functools.partial(model.apply, {"params": params})
  generator_dropout, discriminator_dropout = jax.random.split(dropout_key)

  # 2. One generator pass; the MLM of depth k reads the hidden state after block k.
  # Segment ids (encoders with token-type embeddings only) from the original ids, as
  # fine-tuning and inference derive them (models/amos.py token_types).
  token_types_BxL = amos.token_types(model.config, batch.input_ids)
  generator_input = apply(batch.masked_ids, method=AmosModel.embed)
  hidden_per_depth = apply(generator_input, batch.padding_mask, deterministic, example_ids_B,
                           token_types_BxL, method=AmosModel.generator_hidden,
                           rngs={"dropout": generator_dropout})
  features_per_depth = [_gather_BxPxH(h, batch.positions) for h in hidden_per_depth]  # f_ik
  # The one shared head on all depths at once: one [K*B*P, H] x [H, V] product (and one
  # output-bias gradient) instead of K smaller ones. The logits stay stacked: slicing them
  # would make autodiff pad each depth's gradient back to [K, B, P, V].
  mlm_logits_KxBxPxV = apply(jnp.stack(features_per_depth), method=AmosModel.mlm_logits)

  # 3. Mixture weights over depths, in fp32.
  if config.mixture == "learned":
    # As in the authors' code, the reversed discriminator gradient reaches the generator's
    # blocks through w . f_k; `detach_mixture_features` stops it at f_k (an ablation).
    mixture_features = ([jax.lax.stop_gradient(f) for f in features_per_depth]
                        if config.detach_mixture_features else features_per_depth)
    mixture_logits_BxPxK = jnp.stack(
        [apply(f, method=AmosModel.mixture_logits) for f in mixture_features], axis=-1)
    gamma_BxPxK = jax.nn.softmax(mixture_logits_BxPxK.astype(jnp.float32), axis=-1)
  elif config.mixture == "uniform":
    depths = len(features_per_depth)
    gamma_BxPxK = jnp.full(batch.positions.shape + (depths,), 1.0 / depths, jnp.float32)
  else:
    raise ValueError(f"objective.mixture={config.mixture!r}: expected 'learned' or 'uniform'.")

  # 4. Mixed logits: the vocab logits themselves get no gradient from the discriminator.
  frozen_logits_KxBxPxV = jax.lax.stop_gradient(mlm_logits_KxBxPxV)
  mixed_logits_BxPxV = sum(gamma_BxPxK[..., k, None] * frozen_logits_KxBxPxV[k]
                           for k in range(frozen_logits_KxBxPxV.shape[0]))

  # 5. Straight-through Gumbel-Softmax sample, one key per example.
  gumbel_BxPxV = gumbel_noise_per_example(sample_keys_B, mixed_logits_BxPxV.shape[1:])
  one_hot_BxPxV, sampled_BxP = straight_through_gumbel_softmax(
      mixed_logits_BxPxV, gumbel_BxPxV, config.temperature)

  # 6. Gradient reversal on the sample; E itself gets the ordinary gradient below. Without an
  # adversarial signal (ELECTRA) no gradient flows back through the sample at all, so the
  # straight-through backward is not computed.
  if config.disc_grad_mul == 0:
    one_hot_BxPxV = jax.lax.stop_gradient(one_hot_BxPxV)
  else:
    one_hot_BxPxV = grad_multiply(one_hot_BxPxV, config.disc_grad_mul)

  # 7. The discriminator's input: exact lookups everywhere, at the masked slots of the sampled
  # ids, with the gradient of onehot @ E flowing back into the one-hot.
  rows_Bx1 = jnp.arange(batch.input_ids.shape[0])[:, None]
  sampled_embeddings = apply(one_hot_BxPxV, sampled_BxP, method=AmosModel.embed_sample)
  original_embeddings = apply(batch.targets, method=AmosModel.embed)
  discriminator_input = apply(batch.input_ids, method=AmosModel.embed).at[
      rows_Bx1, batch.positions].set(
          jnp.where(batch.valid[..., None], sampled_embeddings, original_embeddings))
  corrupted_ids = batch.input_ids.at[rows_Bx1, batch.positions].set(
      jnp.where(batch.valid, sampled_BxP, batch.targets))
  # A sample equal to the original counts as original (ELECTRA).
  replaced_BxL = (corrupted_ids != batch.input_ids).astype(jnp.float32)
  rtd_logits_BxL = apply(discriminator_input, batch.padding_mask, deterministic, example_ids_B,
                         token_types_BxL, method=AmosModel.discriminate,
                         rngs={"dropout": discriminator_dropout})
  return Forward(mlm_logits_KxBxPxV, gamma_BxPxK, one_hot_BxPxV, sampled_BxP,
                 discriminator_input, replaced_BxL, rtd_logits_BxL)


def losses(outputs: Forward, batch: MaskedBatch, counts: Counts, mlm_layers,
           config: ml_collections.ConfigDict):
  """Step 8: (loss, metrics), each a local sum over a GLOBAL count (see the module doc)."""
  valid = batch.valid.astype(jnp.float32)
  tokens = batch.padding_mask.astype(jnp.float32)
  over_masked = lambda x: jnp.sum(x * valid) / jnp.maximum(counts.masked, 1.0)
  over_tokens = lambda x: jnp.sum(x * tokens) / jnp.maximum(counts.tokens, 1.0)

  metrics = {}
  mlm_loss = 0.0
  logits_KxBxPxV = outputs.mlm_logits_KxBxPxV
  targets_KxBxP = jnp.broadcast_to(batch.targets, logits_KxBxPxV.shape[:-1])
  cross_entropy_KxBxP = _cross_entropy(logits_KxBxPxV, targets_KxBxP)
  correct_KxBxP = _target_is_top(jax.lax.stop_gradient(logits_KxBxPxV), targets_KxBxP)
  for k, depth in enumerate(sorted(mlm_layers)):
    depth_loss = over_masked(cross_entropy_KxBxP[k])
    mlm_loss += depth_loss
    metrics[f"mlm_loss/depth_{depth}"] = depth_loss
    metrics[f"mlm_accuracy/depth_{depth}"] = over_masked(correct_KxBxP[k])
    metrics[f"mixture_weight/depth_{depth}"] = over_masked(outputs.gamma[..., k])

  rtd_logits, replaced = outputs.rtd_logits, outputs.replaced
  rtd_loss = over_tokens(optax.sigmoid_binary_cross_entropy(rtd_logits, replaced))
  loss = mlm_loss + config.disc_weight * rtd_loss
  metrics.update({
      "loss": loss,
      "mlm_loss": mlm_loss,
      "rtd_loss": rtd_loss,
      "rtd_accuracy": over_tokens((rtd_logits > 0) == (replaced > 0)),
      # Share of masked slots whose sample differs from the original token.
      "replaced_rate": over_masked(jnp.take_along_axis(replaced, batch.positions, axis=1)),
  })
  return loss, metrics


def loss_fn(params, model: AmosModel, config: ml_collections.ConfigDict, batch: MaskedBatch,
            sample_keys_B, dropout_key, counts: Counts, deterministic: bool,
            example_ids_B=None):
  """The AMOS loss of one slice of the batch and its metrics; `counts` are global."""
  outputs = forward(params, model, config, batch, sample_keys_B, dropout_key, deterministic,
                    example_ids_B)
  return losses(outputs, batch, counts, model.config.generator.mlm_layers, config)
