"""Command line: python -m amos_jax.main --config=configs/tiny.py --workdir=/tmp/amos

Modes: `train` (default; prepares the data first when needed), `prepare` (data only).
A GLUE config (configs/glue.py:<task>, which has a `task` key) fine-tunes and evaluates instead:
python -m amos_jax.main --config=configs/glue.py:sst2 --config.init_checkpoint=DIR --workdir=OUT
and configs/squad.py (task "squad") fine-tunes and evaluates SQuAD.
Multi-host: --distributed, or --coordinator_address, --num_processes and --process_id
(amos_jax/multihost.py).
"""

if __name__ == "__main__":  # Before JAX allocates anything; see host_memory.py.
  from amos_jax import host_memory
  host_memory.reexec_with_huge_pages()

from absl import app, flags
from ml_collections import config_flags

from amos_jax import cli_errors
from amos_jax import multihost

config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/base.py[:preset].")
flags.DEFINE_string("workdir", None, "Checkpoints, metrics and prepared data go here.")
flags.DEFINE_enum("mode", "train", ["train", "prepare"], "What to run.")
flags.DEFINE_integer("stop_at_step", None,
                     "Save and exit after this step (time-limited jobs); rerun to resume.")
flags.DEFINE_string("beam_pipeline_options", "",
                    "With --config.data.runner=beam: Apache Beam's pipeline options, "
                    "comma-separated, e.g. --runner=DirectRunner,--direct_num_workers=0 "
                    "(docs/beam.md).")
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  multihost.initialize()
  # Imported after jax.distributed.initialize, which must run before any computation.
  from amos_jax.data import tf_setup
  tf_setup.hide_gpus_from_tf()
  if "task" in FLAGS.config:
    if FLAGS.mode != "train":
      raise app.UsageError(f"--mode={FLAGS.mode} is for pretraining configs, not GLUE ones.")
    if FLAGS.config.task == "squad":
      from amos_jax.squad import finetune
    else:
      from amos_jax.glue import finetune
    finetune.finetune_and_evaluate(FLAGS.config, FLAGS.workdir)
  elif FLAGS.mode == "prepare":
    from amos_jax.data import prepare
    from amos_jax.train import warm_start
    # Continued pretraining prepares with the init checkpoint's tokenizer, as training will.
    init = warm_start.configure(FLAGS.config)
    prepare.prepare(FLAGS.config.data, seq_len=FLAGS.config.seq_len,
                    vocab_size=FLAGS.config.model.vocab_size, workdir=FLAGS.workdir,
                    batch_size=FLAGS.config.batch_size,
                    beam_pipeline_options=FLAGS.beam_pipeline_options,
                    tokenizer=init.tokenizer if init else None)
  else:
    if FLAGS.beam_pipeline_options:
      # Every host of a training run prepares missing data: a pipeline (a Dataflow job) per
      # host is not what anyone wants.
      raise app.UsageError("--beam_pipeline_options is for --mode=prepare: prepare the data "
                           "with it first; training then finds it ready.")
    from amos_jax.train import loop
    loop.train_and_evaluate(FLAGS.config, FLAGS.workdir, FLAGS.stop_at_step)


def run():
  """Parses the command line and runs `main`; the `amos-jax` console script calls it too."""
  flags.mark_flags_as_required(["config", "workdir"])
  cli_errors.run(main)


if __name__ == "__main__":
  run()
