"""The encoder: relative position buckets, padding, shared bias, bf16 compute."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amos_jax.models import transformer


def reference_bucket(relative, num_buckets, max_distance):
  """T5's bidirectional bucketing, scalar Python."""
  half = num_buckets // 2
  bucket = half if relative > 0 else 0
  distance = abs(relative)
  exact = half // 2
  if distance < exact:
    return bucket + distance
  large = exact + int(np.log(distance / exact) / np.log(max_distance / exact) * (half - exact))
  return bucket + min(large, half - 1)


def test_relative_position_buckets_match_t5():
  relative = np.arange(-300, 301)
  got = transformer.t5_relative_position_bucket(relative, 32, 128)
  expected = [reference_bucket(int(r), 32, 128) for r in relative]
  np.testing.assert_array_equal(got, expected)


# The AMOS/COCO-LM authors' bucket ids after their shift, computed by hand from their
# formula (models/transformer.py) for offsets d = key - query.
AMOS_OFFSETS = (-130, -128, -100, -64, -20, -9, -8, -7, -1, 0, 1, 7, 8, 9, 20, 64, 100, 128, 130)
AMOS_BUCKETS = {
    # (bins, max distance, table size): ids for AMOS_OFFSETS.
    (32, 128, 512): (0, 0, 0, 1, 4, 6, 7, 8, 14, 15, 16, 22, 23, 24, 26, 29, 30, 30, 30),
    (64, 128, 512): (0, 0, 1, 4, 13, 22, 23, 24, 30, 31, 32, 38, 39, 40, 49, 58, 61, 62, 62),
    (128, 256, 512): (10, 10, 13, 20, 43, 54, 55, 56, 62, 63, 64, 70, 71, 72, 83, 106, 113, 116,
                      116),
    # A table too short to reach the largest bucket shifts by less.
    (128, 256, 128): (0, 0, 3, 10, 33, 44, 45, 46, 52, 53, 54, 60, 61, 62, 73, 96, 103, 106, 106),
}


@pytest.mark.parametrize("bins, max_distance, table", sorted(AMOS_BUCKETS))
def test_amos_buckets_match_hand_computed_values(bins, max_distance, table):
  # Offsets beyond the table only exist in a longer input: place each offset in a table of
  # positions 0..table-1 (clipped to it) and read it from relative_position_buckets.
  seq_len = 261
  buckets_LxL = transformer.relative_position_buckets(seq_len, bins, max_distance, "amos", table)
  query = 130
  got = [buckets_LxL[query, query + d] for d in AMOS_OFFSETS]
  assert tuple(got) == AMOS_BUCKETS[(bins, max_distance, table)]


def test_amos_bucket_ids_do_not_depend_on_the_input_length():
  short = transformer.relative_position_buckets(16, 64, 128, "amos", 512)
  long = transformer.relative_position_buckets(300, 64, 128, "amos", 512)
  np.testing.assert_array_equal(short, long[:16, :16])
  assert long.min() == 0 and long.max() == 62  # Bucket 63 is never used (the authors' too).


def encoder(**overrides):
  settings = dict(num_layers=2, num_heads=2, ffn_size=32, dropout_rate=0.0,
                  max_position_embeddings=16, relative_position_buckets=8,
                  relative_position_max_distance=16, output_layers=(2,))
  settings.update(overrides)
  return transformer.Encoder(**settings)


def test_padding_does_not_change_real_token_outputs():
  module = encoder()
  embeddings = jax.random.normal(jax.random.key(0), (1, 10, 16))
  mask = jnp.array([[1] * 6 + [0] * 4])
  params = module.init(jax.random.key(1), embeddings, mask)
  (out,) = module.apply(params, embeddings, mask)
  other_padding = embeddings.at[:, 6:].set(jax.random.normal(jax.random.key(2), (1, 4, 16)))
  (out_other,) = module.apply(params, other_padding, mask)
  np.testing.assert_allclose(out[:, :6], out_other[:, :6], atol=1e-5)


def test_one_relative_bias_table_is_shared_by_all_layers():
  module = encoder(num_layers=3, output_layers=(1, 3))
  embeddings = jnp.ones((1, 5, 16))
  params = module.init(jax.random.key(0), embeddings, jnp.ones((1, 5)))["params"]
  assert params["relative_position_bias"]["table"].shape == (8, 2)
  assert all("relative_position_bias" not in params[f"block_{i}"] for i in range(3))
  no_bias = encoder(relative_position_buckets=0).init(
      jax.random.key(0), embeddings, jnp.ones((1, 5)))["params"]
  assert "relative_position_bias" not in no_bias


def test_bfloat16_compute_keeps_float32_params():
  module = encoder(dtype=jnp.bfloat16)
  embeddings = jax.random.normal(jax.random.key(0), (2, 8, 16))
  variables = module.init(jax.random.key(1), embeddings, jnp.ones((2, 8)))
  assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(variables))
  (out,) = module.apply(variables, embeddings, jnp.ones((2, 8)))
  assert out.dtype == jnp.bfloat16
  (out_fp32,) = encoder().apply(variables, embeddings, jnp.ones((2, 8)))
  np.testing.assert_allclose(out.astype(jnp.float32), out_fp32, atol=0.1)


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs a GPU.")
def test_cudnn_attention_matches_xla_with_padding_and_relative_bias():
  """Outputs at real tokens and every parameter gradient agree within bf16 rounding."""
  def module(implementation):
    return encoder(num_heads=4, ffn_size=512, max_position_embeddings=128,
                   relative_position_buckets=32, relative_position_max_distance=64,
                   attention_implementation=implementation, dtype=jnp.bfloat16)
  embeddings = jax.random.normal(jax.random.key(0), (2, 128, 256))
  mask = jnp.arange(128)[None, :] < jnp.array([[128], [77]])
  weights = jax.random.normal(jax.random.key(1), (2, 128, 256))
  params = module("xla").init(jax.random.key(2), embeddings, mask)

  def loss_and_output(params, implementation):
    (out,) = module(implementation).apply(params, embeddings, mask)
    out = jnp.where(mask[..., None], out.astype(jnp.float32), 0.0)
    return jnp.sum(out * weights), out

  grad_fn = jax.jit(jax.grad(loss_and_output, has_aux=True), static_argnums=1)
  xla_grads, xla_out = grad_fn(params, "xla")
  cudnn_grads, cudnn_out = grad_fn(params, "cudnn")
  np.testing.assert_allclose(cudnn_out, xla_out, atol=5e-2)
  for path, xla_grad in jax.tree_util.tree_leaves_with_path(xla_grads):
    cudnn_grad = dict(jax.tree_util.tree_leaves_with_path(cudnn_grads))[path]
    error = jnp.linalg.norm(cudnn_grad - xla_grad) / jnp.linalg.norm(xla_grad)
    assert error < 5e-2, (jax.tree_util.keystr(path), float(error))


def test_attention_dropout_changes_training_outputs_only():
  embeddings = jax.random.normal(jax.random.key(0), (3, 8, 16))
  mask = jnp.array([[1] * 8, [1] * 8, [1] * 5 + [0] * 3])
  params = encoder().init(jax.random.key(1), embeddings, mask)
  rngs = {"dropout": jax.random.key(2)}
  run = lambda rate, deterministic: encoder(attention_dropout_rate=rate).apply(
      params, embeddings, mask, deterministic, rngs=rngs)[0]
  reference = run(0.0, True)
  np.testing.assert_array_equal(run(0.0, False), reference)  # Rate 0: nothing dropped.
  np.testing.assert_array_equal(run(0.3, True), reference)  # Deterministic: nothing dropped.
  dropped = run(0.3, False)
  # Hidden dropout is off (dropout_rate=0), so the attention probabilities made the change.
  assert not np.allclose(dropped[:, :5], reference[:, :5], atol=1e-3)
  # The masks come from the dropout stream: another key drops other probabilities.
  other = encoder(attention_dropout_rate=0.3).apply(params, embeddings, mask, False,
                                                    rngs={"dropout": jax.random.key(3)})[0]
  assert not np.allclose(other, dropped)


def test_cudnn_attention_refuses_attention_dropout_in_training():
  module = encoder(attention_dropout_rate=0.1, attention_implementation="cudnn")
  embeddings = jnp.ones((1, 4, 16))
  with pytest.raises(ValueError, match="attention_dropout_rate=0.1 with cuDNN"):
    module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, embeddings,
                jnp.ones((1, 4)), False)


def test_remat_recomputes_the_same_outputs_and_gradients_with_dropout():
  """remat=True keeps the parameter tree, and with dropout on (masks from the same stream)
  gives the same outputs and parameter gradients: only memory and FLOPs change."""
  embeddings = jax.random.normal(jax.random.key(0), (3, 8, 16))
  mask = jnp.array([[1] * 8, [1] * 8, [1] * 5 + [0] * 3])
  params = encoder(dropout_rate=0.2).init(jax.random.key(1), embeddings, mask)
  remat_params = encoder(dropout_rate=0.2, remat=True).init(jax.random.key(1), embeddings, mask)
  chex.assert_trees_all_equal(remat_params, params)

  def loss(remat, p):
    outputs = encoder(dropout_rate=0.2, attention_dropout_rate=0.1, remat=remat).apply(
        p, embeddings, mask, False, rngs={"dropout": jax.random.key(2)})
    return jnp.sum(outputs[0] ** 2), outputs[0]

  (value, outputs), grads = jax.value_and_grad(lambda p: loss(False, p), has_aux=True)(params)
  (remat_value, remat_outputs), remat_grads = jax.value_and_grad(
      lambda p: loss(True, p), has_aux=True)(params)
  np.testing.assert_allclose(remat_outputs, outputs, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(remat_value, value, rtol=1e-6)
  chex.assert_trees_all_close(remat_grads, grads, rtol=1e-5, atol=1e-6)
  # The backward pass really recomputes: the blocks' forward appears in it under a remat.
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda p: loss(True, p)[0]))(params))
  assert "remat" in jaxpr or "checkpoint" in jaxpr
