"""Train-step throughput and MFU for any config.

python benchmarks/train_step.py --config=configs/small.py [--config.batch_size=64] [--steps=10]

Prints compile time, step time, tokens/s, model FLOPs per token (by network), the measured
matmul peak of this machine in the config's compute dtype, and MFU: against the datasheet
peak on GPU/TPU (train/flops.py; MFU against the measured peak beside it), against the
measured peak on CPU.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from amos_jax import host_memory

host_memory.reexec_with_huge_pages()  # Before JAX allocates anything; see host_memory.py.

from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags

from amos_jax import cli_errors
from amos_jax.train import flops as flops_lib
from amos_jax.train import step as step_lib
from benchmarks import synthetic_step

config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/small.py.")
flags.DEFINE_integer("steps", 10, "Timed steps after compilation and one warm-up step.")
flags.DEFINE_integer("peak_matmul_size", 0,
                     "Side of the square matmul that measures the peak; 0: the default (4096 "
                     "on CPU, 8192 on accelerators). Smaller only to check that it runs.")
FLAGS = flags.FLAGS


def main(_):
  config = FLAGS.config
  pretraining, state, batch, key = synthetic_step.prepare(config)

  dtype = jnp.dtype(config.model.dtype)
  peak_size = FLAGS.peak_matmul_size or None
  peak_before = flops_lib.measure_matmul_peak(dtype, peak_size)
  start = time.perf_counter()
  compiled = pretraining.train_step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  state, metrics = compiled(state, batch, key)  # Warm-up.
  first_loss = float(metrics["loss"])
  start = time.perf_counter()
  for _ in range(FLAGS.steps):
    state, metrics = compiled(state, batch, key)
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - start) / FLAGS.steps

  tokens_per_s = config.batch_size * config.seq_len / step_s
  per_token = flops_lib.flops_per_token(config)
  total = sum(per_token.values())
  # The best of two peak measurements, one on each side of the timed steps: a peak read
  # low (another process, a cold cache) would overstate MFU.
  measured = max(peak_before, flops_lib.measure_matmul_peak(dtype, peak_size)) * jax.device_count()
  device = jax.devices()[0]
  datasheet = None
  if device.platform != "cpu":
    datasheet = flops_lib.datasheet_peak_flops(device.device_kind, dtype)
  print(f"devices: {jax.device_count()} x {device.device_kind}")
  local_rows = config.batch_size // jax.device_count()
  micro_batches = step_lib.accumulation_steps(config, local_rows, jax.devices()[0].platform)
  print(f"batch: {config.batch_size} x {config.seq_len}, dtype {config.model.dtype}, "
        f"{micro_batches} micro-batch(es) of {local_rows // micro_batches} rows per device")
  print(f"compile: {compile_s:.1f} s")
  print(f"step: {step_s * 1e3:.1f} ms (loss on the repeated batch {first_loss:.3f} -> "
        f"{float(metrics['loss']):.3f})")
  print(f"tokens/s: {tokens_per_s:,.0f}")
  print("model flops/token: {:.3e} ({})".format(
      total, ", ".join(f"{k} {v:.2e}" for k, v in per_token.items())))
  print(f"matmul peak: {measured / 1e12:.3f} TFLOP/s measured" + (
      f", {datasheet * jax.device_count() / 1e12:.0f} TFLOP/s datasheet" if datasheet else ""))
  if datasheet:
    print(f"mfu: {flops_lib.mfu(tokens_per_s, total, datasheet * jax.device_count()):.1%} "
          f"(datasheet peak); {flops_lib.mfu(tokens_per_s, total, measured):.1%} "
          "(measured peak)")
  else:
    print(f"mfu: {flops_lib.mfu(tokens_per_s, total, measured):.1%} (measured peak)")


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  cli_errors.run(main)  # A bad flag or config value is one error line.
