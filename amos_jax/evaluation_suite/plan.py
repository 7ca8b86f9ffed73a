"""What one evaluation run does: which tasks, seeds and data, checked before anything trains.

Every task's training and dev files are checked up front, and all missing ones are named in
one error: a benchmark that stops hours in at its sixth task, or a results row silently
short of a column, is worse than a run that does not start. The error names the tasks that
do have their files, so `--tasks=` can run those without the others. (Missing GLUE *test*
files only leave out their submission file, see submission.py.)
"""

import dataclasses
import os

from amos_jax import errors
from amos_jax.evaluation_suite import columns
from amos_jax.glue import tasks as glue_tasks
from amos_jax.squad import data as squad_data

SQUAD_VERSION = "2.0"
# RoBERTa's practice, which AMOS/COCO-LM follow: these small tasks may start from the
# fine-tuned MNLI model instead of the pretrained encoder.
FROM_MNLI_TASKS = ("rte", "mrpc", "stsb")


@dataclasses.dataclass(frozen=True)
class Plan:
  """One evaluation run; `overrides` (and `squad_overrides`) set keys of every GLUE (SQuAD)
  task config, e.g. max_train_examples for a quick run."""
  init_checkpoint: str
  glue_dir: str
  workdir: str
  tasks: tuple[str, ...]
  seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
  squad_dir: str | None = None
  from_mnli: tuple[str, ...] = ()
  overrides: dict = dataclasses.field(default_factory=dict)
  squad_overrides: dict = dataclasses.field(default_factory=dict)


def task_names(names: list[str] | None, squad_dir: str | None) -> tuple[str, ...]:
  """The tasks in the paper's order (MNLI first, so its model exists for --from_mnli):
  `names` normalised ("SST-2" -> "sst2"), or by default the GLUE eight and SQuAD 2.0 when
  there is a squad_dir."""
  if not names:
    return columns.GLUE_TASKS + ((columns.SQUAD,) if squad_dir else ())
  known = columns.GLUE_TASKS + columns.EXTRA_TASKS + (columns.SQUAD,)
  chosen = set()
  for name in names:
    key = name.lower().replace("-", "").replace(" ", "")
    if key not in known:
      raise errors.InputError(f"--tasks: unknown task {name!r}; expected some of "
                              f"{', '.join(known)}.")
    chosen.add(key)
  return tuple(task for task in known if task in chosen)


def check(plan: Plan):
  """Raises InputError (one line) on a bad combination of flags or any missing data file."""
  if not plan.seeds or len(set(plan.seeds)) != len(plan.seeds) or min(plan.seeds) < 0:
    raise errors.InputError(f"--seeds={','.join(map(str, plan.seeds))}: expected distinct "
                            "non-negative integers, e.g. 0,1,2,3,4.")
  for task in plan.from_mnli:
    if task not in FROM_MNLI_TASKS:
      raise errors.InputError(f"--from_mnli: {task!r} cannot start from MNLI; expected some of "
                              f"{', '.join(FROM_MNLI_TASKS)}.")
    if task not in plan.tasks:
      raise errors.InputError(f"--from_mnli names {task!r}, which --tasks does not run.")
  if plan.from_mnli and "mnli" not in plan.tasks:
    raise errors.InputError("--from_mnli starts tasks from the fine-tuned MNLI model: add mnli "
                            "to --tasks.")
  if columns.SQUAD in plan.tasks and not plan.squad_dir:
    raise errors.InputError("--tasks names squad: pass --squad_dir (holding train-v2.0.json "
                            "and dev-v2.0.json).")
  missing = missing_files(plan)
  if missing:
    have = [task for task in plan.tasks if task not in missing]
    rest = (f"pass --tasks={','.join(have)} to run the others without them" if have
            else "no task has its files")
    listed = "; ".join(f"{task}: {', '.join(paths)}" for task, paths in missing.items())
    raise errors.InputError(f"Missing data files: {listed}. Put them there, or {rest}.")


def missing_files(plan: Plan) -> dict[str, list[str]]:
  """{task: [missing path, ...]} of the training and dev files each task reads."""
  missing = {}
  for task in plan.tasks:
    paths = required_files(plan, task)
    absent = [path for path in paths if not os.path.isfile(path)]
    if absent:
      missing[task] = absent
  return missing


def required_files(plan: Plan, task: str) -> list[str]:
  if task == columns.SQUAD:
    return [squad_data.split_path(plan.squad_dir, split, SQUAD_VERSION)
            for split in ("train", "validation")]
  spec = glue_tasks.get_task(task)
  return [os.path.join(plan.glue_dir, spec.glue_dir, spec.tsv_files[split].file_name)
          for split in ("train",) + spec.eval_splits]
