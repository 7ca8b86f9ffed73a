"""Command line: the whole GLUE (and SQuAD 2.0) evaluation of a pretrained encoder in one go.

python -m amos_jax.benchmark --init_checkpoint=DIR --glue_dir=/data/glue --workdir=OUT
    [--squad_dir=/data/squad] [--tasks=mnli,qqp] [--seeds=0,1,2,3,4] [--from_mnli=rte,mrpc,stsb]
python -m amos_jax.benchmark --compare=OUT_A,OUT_B

Writes OUT/results.md, results.json, results.png and glue_submission/ (amos_jax/evaluation_suite);
each task fine-tunes in OUT/<task>/. Run the same command again to resume. Multi-host like
amos_jax.main (--distributed, or --coordinator_address, --num_processes and --process_id): every
process fine-tunes, process 0 writes the results.
"""

if __name__ == "__main__":  # Before JAX allocates anything; see host_memory.py.
  from amos_jax import host_memory
  host_memory.reexec_with_huge_pages()

from absl import app, flags
import jax

from amos_jax import cli_errors
from amos_jax import multihost

flags.DEFINE_string("init_checkpoint", None,
                    "The pretrained encoder: a pretraining workdir or an export.")
flags.DEFINE_string("glue_dir", None, "The GLUE download: CoLA/, SST-2/, MNLI/, ... diagnostic/.")
flags.DEFINE_string("squad_dir", None,
                    "Holds train-v2.0.json and dev-v2.0.json; adds SQuAD 2.0 to the default tasks.")
flags.DEFINE_string("workdir", None, "Results, and each task's fine-tuning in <workdir>/<task>.")
flags.DEFINE_list("tasks", [], "Tasks to run (default: mnli,qqp,qnli,sst2,cola,rte,mrpc,stsb, "
                  "and squad with --squad_dir); wnli adds its model to the submission.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Fine-tuning seeds of every task.")
flags.DEFINE_list("from_mnli", [], "Tasks (of rte, mrpc, stsb) that start from the fine-tuned "
                  "MNLI model's encoder instead of init_checkpoint.")
flags.DEFINE_integer("max_train_examples", 0, "A fixed random subset of each training set, for "
                     "quick runs; 0: all.")
flags.DEFINE_integer("max_eval_examples", 0, "The first N of each dev set; 0: all.")
flags.DEFINE_integer("num_epochs", None, "Overrides every task's recipe; unset: the recipe's.")
flags.DEFINE_list("compare", [], "OUT_A,OUT_B: print two runs' results side by side; runs "
                  "nothing.")
FLAGS = flags.FLAGS


def _seeds(values: list[str]) -> tuple[int, ...]:
  try:
    return tuple(int(value) for value in values)
  except ValueError:
    raise app.UsageError(f"--seeds={','.join(values)}: expected integers, e.g. 0,1,2,3,4.") from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.compare:
    if len(FLAGS.compare) != 2:
      raise app.UsageError(f"--compare={','.join(FLAGS.compare)}: expected two run directories, "
                           "OUT_A,OUT_B.")
    from amos_jax.evaluation_suite import compare
    print(compare.compare(*FLAGS.compare))
    return
  missing = [name for name in ("init_checkpoint", "glue_dir", "workdir") if not FLAGS[name].value]
  if missing:
    raise app.UsageError(f"Missing {', '.join('--' + name for name in missing)} (or pass "
                         "--compare=OUT_A,OUT_B).")
  multihost.initialize()
  # Imported after jax.distributed.initialize, which must run before any computation.
  from amos_jax.data import tf_setup
  tf_setup.hide_gpus_from_tf()
  from amos_jax.evaluation_suite import plan as plan_lib
  from amos_jax.evaluation_suite import runner
  overrides = {"max_train_examples": FLAGS.max_train_examples,
               "max_eval_examples": FLAGS.max_eval_examples}
  if FLAGS.num_epochs is not None:
    overrides["num_epochs"] = FLAGS.num_epochs
  plan = plan_lib.Plan(
      init_checkpoint=FLAGS.init_checkpoint, glue_dir=FLAGS.glue_dir, workdir=FLAGS.workdir,
      tasks=plan_lib.task_names(FLAGS.tasks, FLAGS.squad_dir), seeds=_seeds(FLAGS.seeds),
      squad_dir=FLAGS.squad_dir,
      from_mnli=plan_lib.task_names(FLAGS.from_mnli, None) if FLAGS.from_mnli else (),
      overrides=overrides, squad_overrides=overrides)
  record = runner.run(plan)
  if jax.process_index() == 0:
    from amos_jax.evaluation_suite import table
    print(table.markdown(record))


if __name__ == "__main__":
  cli_errors.run(main)
