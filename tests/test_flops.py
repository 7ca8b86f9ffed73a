"""Model FLOPs per token, counted as what runs (MaxText's way), and MFU's peak."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amos_jax import objective
from amos_jax.models import amos
from amos_jax.train import flops
from configs import small
from configs import tiny


def test_sampled_embeddings_count_only_the_backward_product_and_only_when_adversarial():
  config = small.get_config()
  slots_per_token = objective.max_predictions(128, 0.15) / 128
  vocab, hidden = config.model.vocab_size, config.model.hidden_size
  counted = flops.flops_per_token(config)
  assert counted["one_hot_embedding"] == 2 * vocab * hidden * slots_per_token  # g @ E^T.
  assert flops.flops_per_token(small.get_config("electra"))["one_hot_embedding"] == 0
  # Each block: 6 x (4 H^2 + 2 H F) parameters' FLOPs plus 12 L H of attention.
  block = 6 * (4 * hidden**2 + 2 * hidden * config.model.ffn_size) + 12 * 128 * hidden
  assert counted["generator"] == 8 * block
  assert counted["discriminator"] == 12 * block + 6 * hidden


class _Device(NamedTuple):
  platform: str
  device_kind: str


def test_datasheet_peaks_by_device_kind_and_dtype():
  assert flops.datasheet_peak_flops("NVIDIA H200", jnp.bfloat16) == 989e12
  assert flops.datasheet_peak_flops("NVIDIA H100 80GB HBM3", "float32") == 495e12  # TF32.
  assert flops.datasheet_peak_flops("NVIDIA H100 PCIe", "bfloat16") == 756e12
  assert flops.datasheet_peak_flops("NVIDIA A100-SXM4-80GB", "bfloat16") == 312e12
  assert flops.datasheet_peak_flops("TPU v5 lite", "bfloat16") == 197e12
  assert flops.datasheet_peak_flops("TPU v5", "bfloat16") == 459e12
  assert flops.datasheet_peak_flops("TPU v6 lite", "bfloat16") == 918e12
  assert flops.datasheet_peak_flops("TPU v4", "bfloat16") == 275e12
  assert flops.datasheet_peak_flops("NVIDIA GeForce GTX 1080", "bfloat16") is None


def test_mfu_divides_by_the_datasheet_on_accelerators_and_the_measured_peak_on_cpu(
    monkeypatch):
  monkeypatch.setattr(flops, "measure_matmul_peak", lambda dtype: 700e12)
  assert flops.peak_flops(_Device("gpu", "NVIDIA H200"), jnp.bfloat16) == flops.Peak(
      989e12, "datasheet", 700e12)
  # Unknown accelerators and CPUs: the measured rate; a configured peak wins everywhere.
  assert flops.peak_flops(_Device("gpu", "Some New GPU"), jnp.bfloat16) == flops.Peak(
      700e12, "measured", None)
  assert flops.peak_flops(_Device("cpu", "cpu"), jnp.float32) == flops.Peak(
      700e12, "measured", None)
  assert flops.peak_flops(_Device("gpu", "NVIDIA H200"), jnp.bfloat16, 1e15) == flops.Peak(
      1e15, "config", None)


def _kernel_parameters(tree) -> int:
  """Parameters of the dense kernels under `tree`: what a token multiplies through."""
  leaves = jax.tree_util.tree_leaves_with_path(tree)
  return sum(int(np.prod(leaf.shape)) for path, leaf in leaves
             if jax.tree_util.keystr(path).endswith("['kernel']"))


def test_matmul_counts_follow_the_parameter_tree_with_a_narrow_embedding():
  # ELECTRA-Small's shape in miniature: a 32-wide embedding under a 64-wide model adds an E -> H
  # projection to each encoder and makes the MLM head's tied output E x V.
  config = tiny.get_config()
  config.model.embedding_size = 32
  model = amos.AmosModel(config.model)
  params = jax.eval_shape(lambda key: amos.init_params(model, key, config.seq_len),
                          jax.random.key(0))
  hidden, seq_len = config.model.hidden_size, config.seq_len
  slots_per_token = objective.max_predictions(seq_len, config.objective.mask_prob) / seq_len
  depths = config.model.generator.mlm_layers
  counted = flops.flops_per_token(config)
  attention = 12 * seq_len * hidden
  assert counted["discriminator"] == (6 * _kernel_parameters(params["discriminator"])
                                      + config.model.num_layers * attention
                                      + 6 * _kernel_parameters(params["rtd_head"]))
  assert counted["generator"] == (6 * _kernel_parameters(params["generator"])
                                  + max(depths) * attention)
  vocab, embedding = params["token_embedding"].shape
  assert embedding == 32
  tied_output = embedding * vocab
  assert counted["mlm_heads"] == pytest.approx(
      6 * len(depths) * (_kernel_parameters(params["mlm_head"]) + tied_output) * slots_per_token)
  assert counted["one_hot_embedding"] == pytest.approx(2 * tied_output * slots_per_token)
