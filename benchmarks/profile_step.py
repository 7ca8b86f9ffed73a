"""Where the train step's device time goes: a jax.profiler trace summed per op category.

python benchmarks/profile_step.py --config=configs/small.py [--config.batch_size=512] \
    [--steps=5] [--trace_dir=/tmp/amos_profile]

Builds, compiles and warms up the pretraining step exactly as benchmarks/train_step.py does,
traces --steps steps, maps every profiled op to its instruction in the compiled HLO and prints
device time per category (matmul, attention, vocabulary-sized work, elementwise/LayerNorm,
RNG, optimizer, collectives, other; benchmarks/hlo_categories.py says what goes where) and the
longest ops. The trace stays in --trace_dir for TensorBoard/XProf.
While the profiler is on, XLA:GPU runs its command buffers (CUDA graphs) op by op, so every op
is reported and the traced wall-clock step can be a little slower than train_step.py's; on CPU
the profiler itself slows the step (about 2x for tiny).
"""

import glob
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from amos_jax import host_memory

host_memory.reexec_with_huge_pages()  # Before JAX allocates anything; see host_memory.py.

from absl import flags
import jax
from ml_collections import config_flags

from amos_jax import cli_errors
from amos_jax.train import step as step_lib
from benchmarks import hlo_categories
from benchmarks import profile_table
from benchmarks import synthetic_step

config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/small.py.")
flags.DEFINE_integer("steps", 5, "Traced steps after compilation and one warm-up step.")
flags.DEFINE_string("trace_dir", None, "Where the trace goes (default: a new temporary folder).")
flags.DEFINE_integer("top", 15, "How many of the longest ops to list.")
FLAGS = flags.FLAGS


def traced_steps(compiled, state, batch, key, steps: int, trace_dir: str):
  """Runs `steps` steps under the profiler; returns (ProfileData, wall seconds per step)."""
  jax.profiler.start_trace(trace_dir)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch, key)
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - start) / steps
  jax.profiler.stop_trace()
  traces = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True),
                  key=os.path.getmtime)
  if not traces:
    raise FileNotFoundError(f"jax.profiler wrote no *.xplane.pb under --trace_dir={trace_dir}")
  return jax.profiler.ProfileData.from_file(traces[-1]), step_s


def main(_):
  config = FLAGS.config
  trace_dir = FLAGS.trace_dir or tempfile.mkdtemp(prefix="amos_profile_")
  pretraining, state, batch, key = synthetic_step.prepare(config)
  start = time.perf_counter()
  compiled = pretraining.train_step.lower(state, batch, key).compile()
  compile_s = time.perf_counter() - start
  state, metrics = compiled(state, batch, key)  # Warm-up.
  jax.block_until_ready(metrics)
  profile, step_s = traced_steps(compiled, state, batch, key, FLAGS.steps, trace_dir)

  text = compiled.as_text()
  module = hlo_categories.parse_module(text)
  module_name = text.split(None, 2)[1].rstrip(",")
  platform = jax.devices()[0].platform
  times, source, devices = profile_table.op_times_ns(profile, module_name, platform)
  local_rows = config.batch_size // jax.device_count()
  micro_batches = step_lib.accumulation_steps(config, local_rows, platform)
  ambiguous = profile_table.vocab_size_is_ambiguous(config, jax.device_count(), micro_batches)
  rows, ops, unmatched = profile_table.summarise(times, module, config.model.vocab_size,
                                                 ambiguous)
  per_step = FLAGS.steps * devices
  total = sum(ns for ns, _ in rows.values())

  print(f"devices: {jax.device_count()} x {jax.devices()[0].device_kind}")
  print(f"batch: {config.batch_size} x {config.seq_len}, dtype {config.model.dtype}, "
        f"attention {config.model.attention_implementation or 'xla'}, "
        f"{micro_batches} micro-batch(es)")
  print(f"compile: {compile_s:.1f} s; traced {FLAGS.steps} step(s): {step_s * 1e3:.1f} ms/step "
        f"wall; trace in {trace_dir}")
  print(f"op times from: {source}; {len(times)} distinct ops")
  if not times:
    print("no per-op events in the trace: nothing to attribute")
    return
  if unmatched:
    print(f"{unmatched / total:.1%} of op time is in ops not found in the compiled module "
          "(counted as other)")
  if ambiguous:
    print(f"vocab_size {config.model.vocab_size} equals another dimension of the step: "
          "vocabulary work found by name scope only, not by shape")
  print(f"op time per step and device: {total / per_step / 1e6:.3f} ms "
        f"({total / per_step / 1e9 / step_s:.0%} of the wall-clock step)")
  print(profile_table.format_table(rows, per_step, step_s * 1e9))
  print(f"top {FLAGS.top} ops:")
  print(profile_table.format_top(ops, module, total, per_step, FLAGS.top))


if __name__ == "__main__":
  flags.mark_flag_as_required("config")
  cli_errors.run(main)  # A bad flag or config value is one error line.
