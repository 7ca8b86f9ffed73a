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

import jax
import jax.numpy as jnp
import ml_collections

from amos_jax import objective


def flops_per_token(config: ml_collections.ConfigDict) -> dict[str, float]:
  """Training FLOPs per input token, by network, for a full config."""
  model = config.model
  hidden, ffn, vocab, seq_len = model.hidden_size, model.ffn_size, model.vocab_size, config.seq_len
  depths = model.generator.mlm_layers
  block_params = 4 * hidden * hidden + 2 * hidden * ffn  # Q, K, V, output; FFN in and out.
  attention_per_layer = 12 * seq_len * hidden
  slots_per_token = objective.max_predictions(seq_len, config.objective.mask_prob) / seq_len
  adversarial = config.objective.disc_grad_mul != 0

  def encoder(layers):
    return 6 * layers * block_params + layers * attention_per_layer

  return {
      "discriminator": encoder(model.num_layers) + 6 * hidden,  # + RTD head.
      "generator": encoder(max(depths)),
      "mlm_heads": 6 * len(depths) * (hidden * hidden + hidden * vocab) * slots_per_token,
      # w . f per depth; its backward runs only with the adversarial gradient.
      "mixture": (6 if adversarial else 2) * len(depths) * hidden * slots_per_token,
      # The backward's [P, H] x [H, V] product g @ E^T.
      "one_hot_embedding": (2 * vocab * hidden * slots_per_token) if adversarial else 0.0,
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


def mfu(tokens_per_second: float, flops_per_token_total: float, peak_flops: float) -> float:
  return tokens_per_second * flops_per_token_total / peak_flops
