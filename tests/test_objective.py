"""The AMOS objective's gradients checked against their definitions (AMOS.md)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from amos_jax import objective
from amos_jax.models.amos import AmosModel, init_params
from tests import helpers
from tests import reduced_precision

BATCH = 4


def build(mlm_layers=None, **objective_overrides):
  config = helpers.tiny_config()
  if mlm_layers is not None:
    config.model.generator.mlm_layers = mlm_layers
  config.objective.update(objective_overrides)
  model = AmosModel(config.model)
  params = init_params(model, jax.random.key(0), config.seq_len)
  ids = helpers.text_batch(BATCH, config.seq_len, config.model.vocab_size, padded_rows=1)
  batch = objective.mask_tokens(jnp.asarray(ids["input_ids"]), helpers.keys(1, BATCH),
                                config.objective.mask_prob)
  return config, model, params, batch


def run_forward(config, model, params, batch):
  return objective.forward(params, model, config.objective, batch, helpers.keys(2, BATCH),
                           jax.random.key(3), deterministic=True)


def metric_grad(name, config, model, params, batch):
  """Gradient of one named metric (a loss part) of loss_fn with respect to all params."""
  counts = objective.local_counts(batch)
  def metric(p):
    _, metrics = objective.loss_fn(p, model, config.objective, batch, helpers.keys(2, BATCH),
                                   jax.random.key(3), counts, True)
    return metrics[name]
  return jax.grad(metric)(params)


def is_zero(tree):
  return all(bool(jnp.all(x == 0)) for x in jax.tree_util.tree_leaves(tree))


def test_straight_through_sample_is_exactly_one_hot_and_embeds_as_a_lookup():
  config, model, params, batch = build()
  out = run_forward(config, model, params, batch)
  one_hot = np.asarray(out.one_hot)
  assert set(np.unique(one_hot)) <= {0.0, 1.0}
  np.testing.assert_array_equal(one_hot.sum(-1), 1.0)
  np.testing.assert_array_equal(one_hot.argmax(-1), out.sampled)

  embedding = np.asarray(params["token_embedding"])
  rows = np.arange(BATCH)[:, None]
  expected_ids = np.asarray(batch.input_ids).copy()
  expected_ids[rows, batch.positions] = np.where(batch.valid, out.sampled, batch.targets)
  # Bitwise equal to a plain lookup of the corrupted sequence.
  np.testing.assert_array_equal(out.discriminator_input, embedding[expected_ids])
  np.testing.assert_array_equal(out.replaced, expected_ids != np.asarray(batch.input_ids))


def test_gumbel_backward_is_the_soft_sample_gradient():
  logits = jax.random.normal(jax.random.key(0), (3, 11))
  noise = jax.random.gumbel(jax.random.key(1), (3, 11))
  cotangent = jax.random.normal(jax.random.key(2), (3, 11))
  tau = 0.3
  _, st_vjp = jax.vjp(lambda s: objective.straight_through_gumbel_softmax(s, noise, tau)[0],
                     logits)
  _, soft_vjp = jax.vjp(lambda s: jax.nn.softmax((s + noise) / tau), logits)
  np.testing.assert_allclose(st_vjp(cotangent)[0], soft_vjp(cotangent)[0], rtol=1e-5, atol=1e-6)


def test_first_argmax_matches_numpy_including_ties():
  rng = np.random.default_rng(0)
  x = rng.integers(0, 5, size=(4, 7, 300)).astype(np.float32)  # Many ties.
  for axis in (-1, 1, 0):
    np.testing.assert_array_equal(objective.first_argmax(jnp.asarray(x), axis),
                                  np.argmax(x, axis=axis))
  x[0, 0, :] = np.nan
  assert int(objective.first_argmax(jnp.asarray(x))[0, 0]) == 299  # In range.


@pytest.mark.parametrize("multiplier", [-1.0, 0.0, 2.5])
def test_grad_multiply(multiplier):
  x = jnp.arange(4.0)
  value, vjp = jax.vjp(lambda v: objective.grad_multiply(v, multiplier), x)
  np.testing.assert_array_equal(value, x)
  np.testing.assert_array_equal(vjp(jnp.ones(4))[0], multiplier * jnp.ones(4))


def independent_rtd_loss(params, model, config, batch):
  """The discriminator loss written from AMOS.md with the textbook straight-through estimator
  (hard + soft - stop_gradient(soft)) and NO gradient reversal."""
  apply = functools.partial(model.apply, {"params": params})
  sg = jax.lax.stop_gradient
  hidden = apply(apply(batch.masked_ids, method=AmosModel.embed), batch.padding_mask,
                 method=AmosModel.generator_hidden)
  features = [jnp.take_along_axis(h, batch.positions[..., None], axis=1) for h in hidden]
  vocab_logits = [sg(apply(f, method=AmosModel.mlm_logits)) for f in features]
  gamma = jax.nn.softmax(
      jnp.stack([apply(f, method=AmosModel.mixture_logits) for f in features], -1), -1)
  mixed = sum(gamma[..., k, None] * h for k, h in enumerate(vocab_logits))
  # The same noise as the objective draws: the noise is an input here, not under test.
  noise = objective.gumbel_noise_per_example(helpers.keys(2, BATCH), mixed.shape[1:])
  soft = jax.nn.softmax((mixed + noise) / config.objective.temperature)
  hard = jax.nn.one_hot(jnp.argmax(mixed + noise, -1), mixed.shape[-1])
  sample = hard + soft - sg(soft)
  embedding = params["token_embedding"]
  rows = jnp.arange(BATCH)[:, None]
  inputs = embedding[batch.input_ids].at[rows, batch.positions].set(
      jnp.where(batch.valid[..., None], sample @ embedding, embedding[batch.targets]))
  sampled = jnp.where(batch.valid, jnp.argmax(hard, -1), batch.targets)
  replaced = (batch.input_ids.at[rows, batch.positions].set(sampled) != batch.input_ids)
  logits = apply(inputs, batch.padding_mask, method=AmosModel.discriminate)
  tokens = batch.padding_mask.astype(jnp.float32)
  per_token = optax.sigmoid_binary_cross_entropy(logits, replaced.astype(jnp.float32))
  return jnp.sum(per_token * tokens) / jnp.sum(tokens)


def spread_out(params, seed=7, scale=0.2):
  """Adds noise so the depths' MLMs disagree and the mixture gradient is far from zero."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  noise_keys = helpers.keys(seed, len(leaves))
  return jax.tree_util.tree_unflatten(treedef, [
      x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, noise_keys)])


@pytest.mark.slow
def test_mixture_gets_the_reversed_discriminator_gradient():
  config, model, params, batch = build()
  params = spread_out(params)
  amos = metric_grad("rtd_loss", config, model, params, batch)
  reference = jax.grad(independent_rtd_loss)(params, model, config, batch)
  mixture, reference_mixture = amos["mixture"]["kernel"], reference["mixture"]["kernel"]
  assert float(jnp.abs(reference_mixture).max()) > 1e-3  # The check is not vacuous.
  np.testing.assert_allclose(mixture, -reference_mixture, rtol=2e-3, atol=1e-7)
  # The generator's hidden states get the reversed gradient too, through the mixture logits.
  for block in ("block_0", "block_2"):
    np.testing.assert_allclose(
        jax.flatten_util.ravel_pytree(amos["generator"][block])[0],
        -jax.flatten_util.ravel_pytree(reference["generator"][block])[0], rtol=2e-3, atol=1e-7)
  # The discriminator itself learns with the ordinary sign.
  np.testing.assert_allclose(
      jax.flatten_util.ravel_pytree(amos["discriminator"])[0],
      jax.flatten_util.ravel_pytree(reference["discriminator"])[0], rtol=2e-3, atol=1e-7)


def test_vocab_logits_get_no_gradient_from_the_discriminator():
  config, model, params, batch = build()
  grads = metric_grad("rtd_loss", config, model, params, batch)
  assert is_zero(grads["mlm_head"])
  assert not is_zero(grads["mixture"])


def test_zero_multiplier_cuts_the_adversarial_signal():
  config, model, params, batch = build(disc_grad_mul=0.0)
  grads = metric_grad("rtd_loss", config, model, params, batch)
  assert is_zero(grads["mixture"])
  assert is_zero(grads["generator"])
  assert not is_zero(grads["discriminator"])


def test_generator_depth_groups_are_isolated():
  # Depth 2 trains blocks 0-1 (and the generator embeddings), depth 3 block 2, depth 5 blocks 3-4.
  config, model, params, batch = build(mlm_layers=[2, 3, 5])
  owners = {2: {0, 1}, 3: {2}, 5: {3, 4}}
  for depth, own_blocks in owners.items():
    grads = metric_grad(f"mlm_loss/depth_{depth}", config, model, params, batch)
    for block in range(5):
      block_grads = grads["generator"][f"block_{block}"]
      assert is_zero(block_grads) != (block in own_blocks), (depth, block)
    assert is_zero(grads["generator"]["embedding_norm"]) == (depth != 2)
    assert is_zero(grads["discriminator"])
    assert is_zero(grads["mixture"])


def test_uniform_mixture_has_equal_weights_and_no_mixture_gradient():
  config, model, params, batch = build(mixture="uniform")
  out = run_forward(config, model, params, batch)
  np.testing.assert_allclose(out.gamma, 1 / 3)
  assert is_zero(metric_grad("rtd_loss", config, model, params, batch)["mixture"])


def test_total_loss_is_sum_of_mlm_losses_plus_weighted_rtd():
  config, model, params, batch = build()
  _, metrics = objective.loss_fn(params, model, config.objective, batch, helpers.keys(2, BATCH),
                                 jax.random.key(3), objective.local_counts(batch), True)
  mlm = sum(metrics[f"mlm_loss/depth_{d}"] for d in config.model.generator.mlm_layers)
  np.testing.assert_allclose(metrics["mlm_loss"], mlm, rtol=1e-6)
  np.testing.assert_allclose(metrics["loss"], mlm + 50.0 * metrics["rtd_loss"], rtol=1e-6)
  # Each MLM loss is the mean cross-entropy over the really masked slots (numpy reference).
  out = run_forward(config, model, params, batch)
  logits = np.asarray(out.mlm_logits_KxBxPxV[0], np.float64)
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  picked = np.take_along_axis(log_probs, np.asarray(batch.targets)[..., None], -1)[..., 0]
  valid = np.asarray(batch.valid)
  np.testing.assert_allclose(metrics["mlm_loss/depth_1"], -picked[valid].mean(), rtol=1e-5)


def test_mlm_accuracy_counts_slots_whose_argmax_is_the_target():
  logits = jax.random.normal(jax.random.key(0), (4, 6, 50))
  argmax = np.asarray(logits.argmax(-1))
  targets = np.where(np.arange(6) % 2 == 0, argmax, (argmax + 1) % 50)  # Half are right.
  np.testing.assert_array_equal(objective._target_is_top(logits, jnp.asarray(targets)),
                                targets == argmax)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
  logits = jax.random.normal(jax.random.key(0), (2, 3, 50))
  targets = jax.random.randint(jax.random.key(1), (2, 3), 0, 50)
  grad = jax.grad(lambda x: objective._cross_entropy(x, targets).sum())(logits)
  expected = jax.nn.softmax(logits) - jax.nn.one_hot(targets, 50)
  np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_gumbel_noise_has_the_gumbel_distribution():
  noise = np.asarray(objective.gumbel_noise(jax.random.key(0), (400, 1000)), np.float64)
  assert np.isfinite(noise).all()
  np.testing.assert_allclose(noise.mean(), np.euler_gamma, atol=0.01)
  np.testing.assert_allclose(noise.var(), np.pi**2 / 6, rtol=0.01)
  # CDF exp(-exp(-x)) at a few points.
  for x in (-1.0, 0.0, 1.0, 3.0):
    np.testing.assert_allclose((noise <= x).mean(), np.exp(-np.exp(-x)), atol=0.005)
  other = np.asarray(objective.gumbel_noise(jax.random.key(1), (400, 1000)))
  assert abs(np.corrcoef(noise.ravel(), other.ravel())[0, 1]) < 0.01


def test_each_example_s_noise_depends_on_its_key_only():
  keys = helpers.keys(5, 8)
  noise = objective.gumbel_noise_per_example(keys, (3, 40))
  for rows in (slice(0, 2), slice(2, 4), slice(5, 8)):
    np.testing.assert_array_equal(objective.gumbel_noise_per_example(keys[rows], (3, 40)),
                                  noise[rows])
  np.testing.assert_array_equal(noise[3], objective.gumbel_noise(keys[3], (3, 40)))


def test_broadcast_leading_gradient_is_the_sum():
  from amos_jax.models import broadcast
  x = jax.random.normal(jax.random.key(0), (1, 3, 4))
  cotangent = jax.random.normal(jax.random.key(1), (5, 3, 4))
  value, vjp = jax.vjp(lambda v: broadcast.broadcast_leading(v, (5, 3, 4)), x)
  np.testing.assert_array_equal(value, np.broadcast_to(x, (5, 3, 4)))
  np.testing.assert_allclose(vjp(cotangent)[0], cotangent.sum(0, keepdims=True), rtol=1e-5)
  bias = jnp.arange(4.0)
  _, vjp = jax.vjp(lambda v: broadcast.broadcast_leading(v, (2, 3, 4)), bias)
  np.testing.assert_allclose(vjp(jnp.ones((2, 3, 4)))[0], np.full(4, 6.0))


def test_tied_output_logits_gradients_match_autodiff():
  from amos_jax.models import amos
  x = jax.random.normal(jax.random.key(0), (6, 4))
  embedding = jax.random.normal(jax.random.key(1), (9, 4))
  cotangent = jax.random.normal(jax.random.key(2), (6, 9))
  value, vjp = jax.vjp(amos.tied_output_logits, x, embedding)
  expected_value, expected_vjp = jax.vjp(lambda a, e: a @ e.T, x, embedding)
  np.testing.assert_allclose(value, expected_value, rtol=1e-6)
  for got, expected in zip(vjp(cotangent), expected_vjp(cotangent)):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_emulated_bf16_matmuls_round_a_one_hot_product():
  # The emulation is not vacuous: it changes what an f32 one_hot @ E returns on CPU.
  embedding = jax.random.normal(jax.random.key(0), (9, 4))
  one_hot = jax.nn.one_hot(jnp.array([3, 7]), 9)
  rounded = reduced_precision.with_bf16_matmuls(lambda a, e: a @ e)(one_hot, embedding)
  np.testing.assert_array_equal(rounded, embedding[jnp.array([3, 7])].astype(jnp.bfloat16))
  assert not np.array_equal(rounded, embedding[jnp.array([3, 7])])


def test_discriminator_input_is_an_exact_lookup_under_accelerator_matmul_precision():
  # On a GPU (TF32) or TPU (bf16) a rounded embedding row at the masked slots would tell the
  # discriminator which positions were masked.
  # Emulated on CPU; natively too, which on a GPU or TPU runs its real default precision.
  config, model, params, batch = build()
  forward_fn = lambda p, b: run_forward(config, model, p, b)
  for out in (reduced_precision.with_bf16_matmuls(forward_fn)(params, batch),
              jax.jit(forward_fn)(params, batch)):
    rows = np.arange(BATCH)[:, None]
    corrupted_ids = np.asarray(batch.input_ids).copy()
    corrupted_ids[rows, batch.positions] = np.where(batch.valid, out.sampled, batch.targets)
    assert (corrupted_ids != np.asarray(batch.input_ids)).any()  # Some slots were replaced.
    np.testing.assert_array_equal(out.discriminator_input,
                                  np.asarray(params["token_embedding"])[corrupted_ids])


def test_token_embedding_gets_the_discriminator_gradient_through_the_sampled_ids():
  def direct_rtd_grad(params, model, batch, corrupted_ids):
    """d RTD / d E through E[corrupted ids] alone, the sampled ids held fixed."""
    def rtd_loss(embedding):
      logits = model.apply({"params": params}, embedding[corrupted_ids], batch.padding_mask,
                           method=AmosModel.discriminate)
      replaced = (corrupted_ids != batch.input_ids).astype(jnp.float32)
      tokens = batch.padding_mask.astype(jnp.float32)
      per_token = optax.sigmoid_binary_cross_entropy(logits, replaced)
      return jnp.sum(per_token * tokens) / jnp.sum(tokens)
    return jax.grad(rtd_loss)(params["token_embedding"])

  for disc_grad_mul in (0.0, -1.0):
    config, model, params, batch = build(disc_grad_mul=disc_grad_mul)
    params = spread_out(params)
    out = run_forward(config, model, params, batch)
    rows = jnp.arange(BATCH)[:, None]
    corrupted_ids = batch.input_ids.at[rows, batch.positions].set(
        jnp.where(batch.valid, out.sampled, batch.targets))
    direct = direct_rtd_grad(params, model, batch, corrupted_ids)
    assert float(jnp.abs(direct[out.sampled]).max()) > 1e-4  # Sampled rows get gradient.
    amos = metric_grad("rtd_loss", config, model, params, batch)["token_embedding"]
    if disc_grad_mul == 0.0:
      # No adversarial signal: the discriminator path is E's only gradient from RTD.
      np.testing.assert_allclose(amos, direct, rtol=1e-4, atol=1e-7)
    else:
      # With reversal E also gets MINUS the generator path's gradient (through the
      # generator's input lookups), which the unreversed reference gets with a plus:
      # amos = direct - generator, reference = direct + generator.
      reference = jax.grad(independent_rtd_loss)(params, model, config, batch)
      np.testing.assert_allclose(amos, 2 * direct - reference["token_embedding"], rtol=2e-3,
                                 atol=1e-6)


def test_detached_mixture_features_keep_the_reversed_gradient_out_of_the_generator():
  config, model, params, batch = build(detach_mixture_features=True)
  params = spread_out(params)
  grads = metric_grad("rtd_loss", config, model, params, batch)
  assert is_zero(grads["generator"])
  # The mixture vector w still learns, with the same gradient as without detaching.
  attached = metric_grad("rtd_loss", build()[0], model, params, batch)
  np.testing.assert_allclose(grads["mixture"]["kernel"], attached["mixture"]["kernel"],
                             rtol=1e-6)
  assert not is_zero(attached["generator"])
