"""Runs an evaluation plan: every task fine-tuned over the seeds in its own workdir, then the
results row, its plot and the GLUE submission.

Each task runs in `workdir/<task>/` through its own fine-tuning entry point
(glue/finetune.py, squad/finetune.py) with its per-task, per-size recipe, so the seeds loop's
resume holds there: a killed run loses at most the seed it was on. A task whose results.json
already holds every seed, with the same config and the same init weights, is not even
loaded again (MNLI's 393k training pairs take minutes to tokenize).

On several hosts every process fine-tunes (the training steps are collective) and skips what
process 0 finds finished; process 0 alone writes the results, the plot and the submission
(its predictions run on its own devices).
"""

import json
import logging
import os

import jax
import ml_collections

from amos_jax import errors
from amos_jax.evaluation_suite import columns
from amos_jax.evaluation_suite import plan as plan_lib
from amos_jax.evaluation_suite import plot
from amos_jax.evaluation_suite import submission
from amos_jax.evaluation_suite import table
from amos_jax.finetune import seeds as seeds_lib
from amos_jax.formats import json_files
from amos_jax.formats import registry
from configs import glue as glue_configs
from configs import squad as squad_configs


def run(plan: plan_lib.Plan, mesh=None) -> dict:
  """Fine-tunes and scores every task of `plan`; writes workdir/results.json, results.md,
  results.png and glue_submission/ (process 0); returns the results record."""
  plan_lib.check(plan)
  commit = table.git_commit()  # The code that trains, whatever changes while it does.
  init_sha256 = init_fingerprint(plan.init_checkpoint)
  os.makedirs(plan.workdir, exist_ok=True)
  task_results, trained = run_tasks(plan, init_sha256, mesh)
  record = table.summarize(task_results, init_checkpoint=os.path.abspath(plan.init_checkpoint),
                           init_sha256=init_sha256, seeds=plan.seeds, from_mnli=plan.from_mnli,
                           commit=commit)
  if jax.process_index() != 0:
    return record
  if not trained:
    _keep_date_and_commit(record, os.path.join(plan.workdir, table.RESULTS_JSON))
  table.write(plan.workdir, record)
  plot.write(os.path.join(plan.workdir, plot.PLOT_FILE), record)
  glue = {task: results for task, results in task_results.items() if task != columns.SQUAD}
  record["submission"] = submission.write(
      os.path.join(plan.workdir, submission.SUBMISSION_DIR), plan.glue_dir,
      {task: table.best_seed(results)["checkpoint"] for task, results in glue.items()},
      {task: results["config"]["seq_len"] for task, results in glue.items()})
  table.write(plan.workdir, record)
  return record


def init_fingerprint(path: str) -> str:
  """seeds.fingerprint of the checkpoint's encoder weights; one error line if unreadable."""
  try:
    checkpoint = registry.load(path)
  except (errors.InputError, OSError) as e:
    raise errors.InputError(f"--init_checkpoint={path} cannot be read: {e}") from e
  return seeds_lib.fingerprint(checkpoint.encoder_params)


def _keep_date_and_commit(record: dict, path: str):
  """A rerun that trained nothing keeps the date and commit of the run whose figures it shows,
  if `path` holds that run's record of the same tasks."""
  if not os.path.isfile(path):
    return
  try:
    previous = json_files.read_dict(path)
  except errors.InputError:
    return  # Rewritten below from the tasks' own records.
  if previous.get("tasks") == json.loads(json.dumps(record["tasks"])):
    record["date"], record["git_commit"] = previous.get("date"), previous.get("git_commit")


def run_tasks(plan: plan_lib.Plan, init_sha256: str,
              mesh=None) -> tuple[dict[str, dict], list[str]]:
  """({task: its results.json record}, the tasks that trained a seed or more), training what
  is not finished, in plan order."""
  results, trained = {}, []
  for task in plan.tasks:
    init_checkpoint, sha256 = plan.init_checkpoint, init_sha256
    if task in plan.from_mnli:
      init_checkpoint = table.best_seed(results["mnli"])["checkpoint"]
      sha256 = init_fingerprint(init_checkpoint)
    config = task_config(plan, task, init_checkpoint)
    task_dir = os.path.join(plan.workdir, task)
    # Every process trains what process 0 finds unfinished on its disk, or the collectives
    # would wait forever.
    results[task] = seeds_lib.share_from_process_0(
        finished(task_dir, config, sha256) if jax.process_index() == 0 else None)
    if results[task] is not None:
      logging.info("%s: every seed is in %s (same config and init weights); not run again.",
                   task, task_dir)
      continue
    logging.info("%s: fine-tuning seeds %s from %s into %s", task, list(plan.seeds),
                 init_checkpoint, task_dir)
    results[task] = _finetune_module(task).finetune_and_evaluate(config, task_dir, mesh)
    trained.append(task)
  return results, trained


def _finetune_module(task: str):
  # Imported here: the module's import pulls in the models and training code.
  if task == columns.SQUAD:
    from amos_jax.squad import finetune  # pylint: disable=g-import-not-at-top
  else:
    from amos_jax.glue import finetune  # pylint: disable=g-import-not-at-top
  return finetune


def task_config(plan: plan_lib.Plan, task: str, init_checkpoint: str) -> ml_collections.ConfigDict:
  """The task's own config (configs/glue.py or configs/squad.py) with the plan's settings."""
  if task == columns.SQUAD:
    config = squad_configs.get_config(plan_lib.SQUAD_VERSION)
    config.data_dir, overrides = plan.squad_dir, plan.squad_overrides
  else:
    config = glue_configs.get_config(task)
    config.data_dir, overrides = plan.glue_dir, plan.overrides
  config.init_checkpoint = os.path.abspath(init_checkpoint)
  config.seeds = tuple(plan.seeds)
  # Unknown keys are added here and named by the task's own config check.
  config.update(overrides)
  return config


def finished(task_dir: str, config: ml_collections.ConfigDict, init_sha256: str) -> dict | None:
  """The task's results.json if it holds every seed of `config`, run with the same config from
  the same weights, their exports still there; else None (the seeds loop then decides seed
  by seed). Changed data files are not noticed here: delete the task's directory to rerun."""
  path = os.path.join(task_dir, seeds_lib.RESULTS_FILE)
  if not os.path.isfile(path):
    return None
  try:
    results = json_files.read_dict(path)
  except errors.InputError as e:
    raise errors.InputError(f"{e} It records the seeds a run of this task finished: delete it "
                            "to train the task again.") from e
  same = (results.get("config") == json.loads(json.dumps(config.to_dict()))
          and results.get("init_sha256") == init_sha256
          and [record.get("seed") for record in results.get("seeds", [])] == list(config.seeds)
          and all(os.path.isdir(str(record.get("checkpoint"))) for record in results["seeds"]))
  return results if same else None

