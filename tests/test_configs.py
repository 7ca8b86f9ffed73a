"""Every preset loads and builds (shapes only, so base and large cost no memory)."""

import importlib

import jax
import pytest

from amos_jax import config_validation
from amos_jax.models.amos import AmosModel, init_params
from configs import default

SIZES = ("tiny", "mini", "small", "base", "large")
PRESETS = (None, "electra", "uniform", "no_reversal", "detached_mixture")


def count(tree):
  return sum(x.size for x in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_builds(size, preset):
  config = importlib.import_module(f"configs.{size}").get_config(preset)
  layers, hidden, heads, ffn, mlm_layers = default.SIZES[size]
  assert (config.model.num_layers, config.model.hidden_size) == (layers, hidden)
  model = AmosModel(config.model)
  shapes = jax.eval_shape(lambda: init_params(model, jax.random.key(0), config.seq_len))
  generator_blocks = [k for k in shapes["generator"] if k.startswith("block_")]
  assert len(generator_blocks) == max(config.model.generator.mlm_layers)
  assert len([k for k in shapes["discriminator"] if k.startswith("block_")]) == layers
  assert shapes["token_embedding"].shape == (config.model.vocab_size, hidden)
  if preset == "electra":
    assert config.model.generator.mlm_layers == [min(mlm_layers)]
    assert config.objective.disc_grad_mul == 0.0


def test_base_discriminator_has_bert_base_size():
  config = importlib.import_module("configs.base").get_config()
  shapes = jax.eval_shape(
      lambda: init_params(AmosModel(config.model), jax.random.key(0), config.seq_len))
  # 12 blocks of 7.08M weights: the BERT-base encoder body.
  assert 84e6 < count(shapes["discriminator"]) < 86e6


def test_unknown_preset_is_rejected():
  with pytest.raises(ValueError, match="Unknown preset 'elektra'"):
    importlib.import_module("configs.small").get_config("elektra")


def test_text_encoder_is_the_pretrained_discriminator():
  import jax.numpy as jnp
  import numpy as np
  from amos_jax.models.amos import TextEncoder, encoder_params
  config = importlib.import_module("configs.tiny").get_config()
  config.model.dropout_rate = 0.0
  model = AmosModel(config.model)
  params = init_params(model, jax.random.key(0), 16)
  ids = jnp.arange(5, 21)[None] % config.model.vocab_size
  mask = jnp.ones_like(ids)
  encoder = TextEncoder(config.model)
  hidden = encoder.apply({"params": encoder_params(params)}, ids, mask)
  # The same as running the AMOS discriminator on a plain lookup.
  embeddings = model.apply({"params": params}, ids, method=AmosModel.embed)
  (expected,) = model.apply({"params": params}, embeddings, mask,
                            method=lambda m, e, k: m.discriminator(e, k, True))
  np.testing.assert_array_equal(hidden, expected)
  init_tree = jax.eval_shape(lambda: encoder.init(jax.random.key(0), ids, mask)["params"])
  assert jax.tree_util.tree_structure(init_tree) == jax.tree_util.tree_structure(
      encoder_params(params))


def test_cudnn_attention_with_attention_dropout_is_a_config_error():
  from amos_jax import config_validation
  config = importlib.import_module("configs.tiny").get_config()
  config.model.attention_implementation = "cudnn"
  config.model.attention_dropout_rate = 0.1  # Set here: the tiny preset pretrains without.
  with pytest.raises(config_validation.ConfigError, match="model.attention_dropout_rate=0.1"):
    config_validation.validate(config, 1)
  config.model.attention_dropout_rate = 0.0
  config_validation.validate(config, 1)


@pytest.mark.parametrize("key, value, message", [
    ("relative_position_bucket_function", "log", r"model\.relative_position_bucket_function"),
    ("relative_position_max_distance", 17, r"larger than 17 for 64 amos buckets"),
    ("classifier_activation", "relu", r"model\.classifier_activation"),
    ("layer_norm_eps", 0.0, r"model\.layer_norm_eps"),
    ("sep_token_id", 40000, r"an id below model\.vocab_size"),
])
def test_architecture_options_are_checked_at_start(key, value, message):
  config = default.get_base_config("small")
  config.model[key] = value
  with pytest.raises(config_validation.ConfigError, match=message):
    config_validation.validate(config, 1)
