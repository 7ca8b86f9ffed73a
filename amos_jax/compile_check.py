"""Compiles the real training step for a TPU slice or GPUs from this host, before booking them.

  python -m amos_jax.compile_check --config=configs/base.py --topology=v5e-8 \
      [--config.batch_size=512] [--task=glue|squad] [--find_batch] [--out=report.json]

Prints one Markdown row per compile: per-chip arguments (parameters and optimizer state),
temporaries, outputs, generated code and their total against the chip's HBM, FITS or DOES NOT
FIT, compiled FLOPs per chip beside train/flops.py's model count, the roofline lower bound on
the step time and the MFU ceiling it implies, and the compile time (amos_jax/aot/). Exits 1
when the step does not fit, so a launch script can stop before the job starts. Needs libtpu
(requirements-tpu.txt) for TPU slices (v4-8, v5e-8, v5e-64, v5p-8, v6e-8 and the other Cloud
TPU names) and the CUDA plugin (requirements-gpu-compile.txt) for GPUs (h100-8, h200-16, ...).
"""

from amos_jax.aot import check  # First: it keeps JAX on the CPU (aot/__init__.py).
from absl import flags, logging
from ml_collections import config_flags

from amos_jax import atomic_file
from amos_jax import cli_errors
from amos_jax.aot import report as report_lib

config_flags.DEFINE_config_file("config", None,
                                "Pretraining config, e.g. configs/base.py[:preset]; for "
                                "--task=glue|squad its model is the encoder.")
flags.DEFINE_string("topology", None,
                    "The TPU slice (v4-8, v5e-8, v5e-64, v5p-8, v6e-8, ...) or GPUs (h100-8, "
                    "h200-16, ...).")
flags.DEFINE_enum("task", "pretrain", list(check.TASKS),
                  "Which step: pretraining, or GLUE's (MNLI, 128 tokens) or SQuAD's (384 "
                  "tokens) fine-tuning step.")
flags.DEFINE_integer("finetune_batch_size", 0,
                     "Global batch of --task=glue|squad; 0: the task's recipe for the size.")
flags.DEFINE_bool("find_batch", False,
                  "Also search the largest per-chip batch that fits without accumulation (and "
                  "the accumulation the configured batch needs), compiling a few candidates.")
flags.DEFINE_string("out", "", "Also write the reports as JSON to this file.")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  reports = check.run_check(FLAGS.config, FLAGS.topology, FLAGS.task,
                            FLAGS.finetune_batch_size, FLAGS.find_batch)
  print(report_lib.table(reports), flush=True)
  for r in reports:
    if not r.fits:
      logging.warning("%s at %d x %d does not fit: %s", r.target, r.global_batch, r.seq_len,
                      r.compiler_message or f"{r.total_bytes} bytes per chip")
  if FLAGS.out:
    atomic_file.write_json(FLAGS.out, {"topology": FLAGS.topology, "task": FLAGS.task,
                                       "config": FLAGS.config.to_dict(),
                                       "reports": [r.as_record() for r in reports]})
  if not reports[0].fits:
    raise SystemExit(1)


def cli():
  """The command line (also the `amos-jax-compile-check` console script)."""
  flags.mark_flags_as_required(["config", "topology"])
  cli_errors.run(main)


if __name__ == "__main__":
  cli()
