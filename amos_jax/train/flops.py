"""Model FLOPs per token and MFU, counted the way MaxText does.

Training FLOPs per token = 6 x (matmul parameters the token passes through) + attention
(12 x layers x seq_len x hidden for bidirectional attention, forward and backward). Every
network is counted: the discriminator and all generator blocks on every token; heads only
where they run: the MLM head (once per depth) at the static prediction slots, the RTD head on
every token. The sampled tokens' embeddings are exact lookups forward; only their backward,
g @ E^T into the one-hot, is a matmul, and it runs only with the adversarial gradient
(disc_grad_mul != 0). Embedding lookups and element-wise work are free.
"""

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from amos_jax import objective
from amos_jax.models import amos

# Dense (no sparsity) peak matmul FLOP/s of one chip from the vendors' datasheets, by the
# compute dtype, as MaxText, PaLM and MLPerf divide by. Matched in order against the
# lower-cased `device_kind` ("NVIDIA H100 80GB HBM3", "TPU v5 lite", ...). float32 is the
# rate float32 matmuls run at under JAX's default precision: TF32 tensor cores on
# Ampere/Hopper GPUs, one bf16 pass on TPUs.
_TF = 1e12
DATASHEET_PEAK_FLOPS = (
    ("h100 pcie", {"bfloat16": 756 * _TF, "float16": 756 * _TF, "float32": 378 * _TF}),
    ("h100", {"bfloat16": 989 * _TF, "float16": 989 * _TF, "float32": 495 * _TF}),  # SXM.
    ("h200", {"bfloat16": 989 * _TF, "float16": 989 * _TF, "float32": 495 * _TF}),
    ("a100", {"bfloat16": 312 * _TF, "float16": 312 * _TF, "float32": 156 * _TF}),
    ("tpu v4", {"bfloat16": 275 * _TF, "float32": 275 * _TF}),
    ("tpu v5 lite", {"bfloat16": 197 * _TF, "float32": 197 * _TF}),
    ("tpu v5e", {"bfloat16": 197 * _TF, "float32": 197 * _TF}),
    ("tpu v5", {"bfloat16": 459 * _TF, "float32": 459 * _TF}),  # v5p.
    ("tpu v6 lite", {"bfloat16": 918 * _TF, "float32": 918 * _TF}),
    ("tpu v6e", {"bfloat16": 918 * _TF, "float32": 918 * _TF}),
)


def encoder_flops_per_token(model: ml_collections.ConfigDict, seq_len: int,
                            layers: int) -> float:
  """Training FLOPs per token of `layers` transformer blocks of `model`'s width, with the
  embedding projection; no head."""
  hidden = model.hidden_size
  # Narrower embeddings (ELECTRA-Small's 128 under 256) add a per-token E -> H projection.
  embedding = amos.embedding_size(model)
  projection = embedding * hidden if embedding != hidden else 0
  block_params = 4 * hidden * hidden + 2 * hidden * model.ffn_size  # Q, K, V, out; FFN.
  return (6 * (layers * block_params + projection)
          + layers * attention_flops_per_layer(seq_len, hidden))


def attention_flops_per_layer(seq_len: int, hidden: int) -> float:
  """Per token and layer: scores Q K^T and their weighted sum of V, forward and backward."""
  return 12 * seq_len * hidden


def attention_flops_per_token(config: ml_collections.ConfigDict) -> float:
  """The attention part of flops_per_token (discriminator and generator blocks): what a
  fused attention kernel such as cuDNN's computes out of sight of XLA's cost analysis."""
  model = config.model
  layers = model.num_layers + max(model.generator.mlm_layers)
  return layers * attention_flops_per_layer(config.seq_len, model.hidden_size)


def flops_per_token(config: ml_collections.ConfigDict) -> dict[str, float]:
  """Training FLOPs per input token, by network, for a full config."""
  model = config.model
  hidden, vocab, seq_len = model.hidden_size, model.vocab_size, config.seq_len
  # A narrower embedding also makes the tied MLM output E x V.
  embedding = amos.embedding_size(model)
  depths = model.generator.mlm_layers
  slots_per_token = objective.max_predictions(seq_len, config.objective.mask_prob) / seq_len
  adversarial = config.objective.disc_grad_mul != 0

  def encoder(layers):
    return encoder_flops_per_token(model, seq_len, layers)

  return {
      "discriminator": encoder(model.num_layers) + 6 * hidden,  # + RTD head.
      "generator": encoder(max(depths)),
      "mlm_heads": 6 * len(depths) * (hidden * embedding + embedding * vocab) * slots_per_token,
      # w . f per depth; its backward runs only with the adversarial gradient.
      "mixture": (6 if adversarial else 2) * len(depths) * hidden * slots_per_token,
      # The backward's [P, E] x [E, V] product g @ E^T.
      "one_hot_embedding": (2 * vocab * embedding * slots_per_token) if adversarial else 0.0,
  }


def measure_matmul_peak(dtype=jnp.float32, size: int | None = None, repeats: int = 10) -> float:
  """Best observed FLOP/s of a square matmul on the default device: the machine's peak.

  The default size is 4096 on CPU and 8192 on accelerators, where 4096 is too small to
  saturate an H100's tensor cores and would understate the peak (overstating MFU).
  """
  if size is None:
    size = 4096 if jax.default_backend() == "cpu" else 8192
  a = jax.random.normal(jax.random.key(0), (size, size), dtype)
  b = jax.random.normal(jax.random.key(1), (size, size), dtype)
  matmul = jax.jit(lambda x, y: x @ y)
  matmul(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best


def datasheet_peak_flops(device_kind: str, dtype) -> float | None:
  """The datasheet's dense peak of one device in `dtype`, or None for devices not listed."""
  kind = device_kind.lower()
  for pattern, peaks in DATASHEET_PEAK_FLOPS:
    if pattern in kind:
      return peaks.get(jnp.dtype(dtype).name)
  return None


class Peak(NamedTuple):
  """FLOP/s per device that MFU divides by, where it comes from, and the measured rate."""
  per_device: float
  source: str  # "datasheet", "measured" or "config".
  measured_per_device: float | None  # Reported beside a datasheet MFU; None otherwise.


def peak_flops(device, dtype, configured: float = 0.0) -> Peak:
  """MFU's denominator for one device: config.peak_flops_per_device when set; on GPU/TPU the
  datasheet peak (the measured matmul rate reported beside it); on CPU, and for devices the
  table lacks, the measured rate."""
  if configured:
    return Peak(configured, "config", None)
  measured = measure_matmul_peak(dtype)
  datasheet = None if device.platform == "cpu" else datasheet_peak_flops(device.device_kind,
                                                                         dtype)
  if datasheet is None:
    return Peak(measured, "measured", None)
  return Peak(datasheet, "datasheet", measured)


def mfu(tokens_per_second: float, flops_per_token_total: float, peak_flops: float) -> float:
  return tokens_per_second * flops_per_token_total / peak_flops
