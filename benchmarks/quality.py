"""Does pretraining pay off? Random init vs ELECTRA vs AMOS, fine-tuned on SST-2 and AG News.

python benchmarks/quality.py --workdir=/tmp/amos_quality [--preset=mini] [--pretrain_steps=N]
  [--arms=random,electra] [--tasks=sst2]

1. Prepares the pretraining text once (`--text_files`, by default the shared Wikipedia and
   books text, ../shared/data relative to the repository) and pretrains the preset as
   ELECTRA (`:electra`) and as AMOS for the same number of steps; then, unless
   --equal_wallclock=false, ELECTRA again for as many steps as fit in AMOS's wall-clock
   (measured from the two runs), so AMOS is compared at equal steps AND equal time;
   --ablations adds arms of other objective presets (e.g. detached_mixture).
2. Fine-tunes every arm and a random-init encoder of the same size and tokenizer on SST-2
   (`--sst2_dir`: a random subset of train.tsv, scored on all of dev.tsv) and AG News
   (`--agnews_file` split into train and test rows by a fixed seed), with every seed, using
   the fine-tuning recipe the encoder's size gets by default.
3. Prints one table, writes <workdir>/quality.json and <workdir>/quality.png (accuracy per
   arm and task, every seed and the median).

--curve_steps=1000,3000 also keeps ELECTRA's checkpoints (and held-out scores) at those
steps and fine-tunes each, for the gain against pretraining minutes (quality_curve.png).
These are points along ONE run whose learning rate decays to 0 at its last step, not runs
with budgets of their own, which would each end with a decayed rate.

Every finished step is kept: a rerun resumes a pretraining run where it stopped, skips
finished pretraining runs and fine-tuning seeds, so the command can run for hours in the
background and be restarted.

The shared sst2/dev.tsv is a held-out slice of GLUE SST-2 *train* (6,735 rows), not GLUE's
872-row dev set: scores are not comparable with published ones.
"""

import ast
import json
import math
import os
import random
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from amos_jax import host_memory

host_memory.reexec_with_huge_pages()  # Before JAX allocates anything; see host_memory.py.

from absl import app, flags, logging
import numpy as np

from amos_jax import atomic_file
from amos_jax import config_validation
from amos_jax.finetune import seeds as seeds_lib
from amos_jax.glue import finetune
from amos_jax.train import loop
from amos_jax.train import metric_logging
from configs import glue as glue_configs
from configs import mini, small, tiny

SHARED_DATA = os.path.join(REPO, "..", "shared", "data")

flags.DEFINE_string("workdir", "/tmp/amos_quality", "Every run of the benchmark goes here.")
flags.DEFINE_enum("preset", "mini", ["tiny", "mini", "small"], "Model size to pretrain.")
flags.DEFINE_integer("pretrain_steps", 0,
                     "Pretraining steps of the ELECTRA and AMOS arms; 0: the preset's own.")
flags.DEFINE_integer("amos_steps", 0,
                     "AMOS's (and the ablations') steps when they differ from "
                     "--pretrain_steps, e.g. as many as fit in ELECTRA's wall-clock; 0: the same.")
flags.DEFINE_multi_string(
    "pretrain_override", [],
    "key=value set in every arm's pretraining config, the key dotted and the value read as "
    "a Python literal (else a string), e.g. model.dtype=bfloat16 or batch_size=256; "
    "repeatable. Recorded in each arm's arm.json.")
flags.DEFINE_bool("equal_wallclock", True,
                  "Also pretrain ELECTRA for as long as AMOS took (more steps).")
flags.DEFINE_list("ablations", [],
                  "More objective presets pretrained as extra arms at AMOS's steps, e.g. "
                  "detached_mixture or uniform (configs/default.py).")
flags.DEFINE_string("text_files", ",".join(
    os.path.join(SHARED_DATA, pattern) for pattern in ("wikipedia/*.txt.gz", "books/*.txt.gz")),
    "Pretraining text: comma-separated files or globs, documents separated by blank lines.")
flags.DEFINE_string("sst2_dir", os.path.join(SHARED_DATA, "sst2"),
                    "Holds train.tsv and dev.tsv (sentence, label; with a header).")
flags.DEFINE_integer("sst2_train_examples", 10000,
                     "Random SST-2 training subset (0: all 60,614 rows).")
flags.DEFINE_string("agnews_file", os.path.join(SHARED_DATA, "agnews", "dev.tsv"),
                    "AG News rows (text, label name; no header), split into train and test.")
flags.DEFINE_integer("agnews_test_examples", 2000, "AG News rows held out for scoring.")
# SST-2 sentences average 9 words (203 of 60,614 have more than 40); AG News rows 31.
flags.DEFINE_integer("sst2_seq_len", 64, "SST-2 fine-tuning sequence length.")
flags.DEFINE_integer("agnews_seq_len", 128, "AG News fine-tuning sequence length.")
flags.DEFINE_list("tasks", ["sst2", "agnews"], "Downstream tasks to run: sst2, agnews.")
flags.DEFINE_list("arms", [],
                  "Only these arms (random, electra, amos, electra_equal_time, or an "
                  "ablation's name), e.g. to score the finished ones while others are still "
                  "to come; empty: all. An arm's pretraining runs only if it is listed or "
                  "another listed arm needs it (random init takes its size and tokenizer "
                  "from the first pretrained arm, ELECTRA's when there is none; equal "
                  "wall-clock needs ELECTRA and AMOS).")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Fine-tuning seeds.")
flags.DEFINE_list("curve_steps", [],
                  "Steps of ELECTRA's run whose checkpoints are also fine-tuned, e.g. "
                  "1000,3000: the gain against pretraining minutes.")
FLAGS = flags.FLAGS

PRESETS = {"tiny": tiny, "mini": mini, "small": small}
TASK_NAMES = {"sst2": "SST-2", "agnews": "AG News"}


def _read_json(path):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def pretrain(name: str, preset: str, steps: int, keep_steps=()) -> dict:
  """Pretrains (or resumes, or reads the record of) one arm; returns its record.

  keep_steps: earlier steps whose checkpoints and held-out scores are kept too (its
  `evals`); checkpoints and evaluations then come every gcd of them and `steps`.
  """
  workdir = os.path.join(FLAGS.workdir, f"pretrain_{name}")
  record_path = os.path.join(workdir, "arm.json")
  if os.path.exists(record_path):
    return _read_json(record_path)
  config, overrides = pretrain_config(preset)
  config.num_train_steps = steps
  config.eval_every_steps = steps  # One held-out evaluation, at the end.
  config.checkpoint_every_steps = max(1, min(config.checkpoint_every_steps, steps))
  if keep_steps:
    every = math.gcd(steps, *keep_steps)
    config.eval_every_steps = config.checkpoint_every_steps = every
    config.keep_checkpoints = steps // every + 1
  config.data.text_files = FLAGS.text_files
  config.data.document_split = "blank_line"
  config.data.prepared_dir = os.path.join(FLAGS.workdir, "data")
  start = time.perf_counter()
  reached_step = int(loop.train_and_evaluate(config, workdir).step)
  if reached_step != steps:
    # The loop returns early when preempted (SIGTERM), having saved: no record yet.
    raise SystemExit(f"Pretraining arm {name!r} stopped at step {reached_step} of {steps} "
                     f"(preempted?); its checkpoint is in {workdir}: run the same command "
                     "again to resume it.")
  # A resumed run's wall-clock adds the time its earlier attempts logged.
  records = metric_logging.read_metrics(workdir)
  train_records = [r for r in records if "tokens_per_s" in r]
  tokens_per_step = config.batch_size * config.seq_len
  seconds = _train_seconds(train_records, tokens_per_step) or time.perf_counter() - start
  evals = {r["step"]: {k: v for k, v in r.items() if k.startswith("eval/")}
           for r in records if "eval/rtd_auc" in r}
  median_tokens_per_s = float(np.median([r["tokens_per_s"] for r in train_records]))
  record = {"name": name, "preset": preset, "overrides": overrides, "workdir": workdir,
            "steps": steps,
            "seconds": seconds, "median_tokens_per_s": median_tokens_per_s,
            "quiet_seconds": steps * tokens_per_step / median_tokens_per_s,
            "tokens": steps * tokens_per_step, "eval": evals[steps],
            "evals": {str(step): scores for step, scores in sorted(evals.items())}}
  atomic_file.write_json(record_path, record)
  return record


def pretrain_config(preset: str):
  """(the --preset size's config with objective `preset` and the --pretrain_override values,
  those values as a dict)."""
  config = PRESETS[FLAGS.preset].get_config(preset)
  overrides = parse_overrides(FLAGS.pretrain_override)
  # Keys checked first: ConfigDict.update_from_flattened_dict silently adds keys it lacks.
  unknown = sorted(set(overrides) - config_validation.flat_keys(config))
  if unknown:
    raise app.UsageError(f"--pretrain_override: the {FLAGS.preset} config has no key "
                         f"{', '.join(map(repr, unknown))}.")
  try:
    config.update_from_flattened_dict(overrides)  # Keeps each field's type: int refuses "big".
  except (TypeError, ValueError) as error:
    raise app.UsageError(f"--pretrain_override: {error}") from None
  return config, overrides


def parse_overrides(items: list[str]) -> dict:
  """{"model.dtype": "bfloat16", "batch_size": 256} from ["model.dtype=bfloat16", ...]."""
  overrides = {}
  for item in items:
    key, equals, text = item.partition("=")
    if not equals or not key:
      raise app.UsageError(f"--pretrain_override={item!r}: expected key=value.")
    try:
      overrides[key] = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      overrides[key] = text
  return overrides


def _train_seconds(train_records, tokens_per_step: int) -> float:
  """Training wall-clock from the logged throughput (excludes data preparation)."""
  seconds, last_step = 0.0, 0
  for record in train_records:
    steps = record["step"] - last_step
    if steps > 0:
      seconds += steps * tokens_per_step / record["tokens_per_s"]
    last_step = record["step"]
  return seconds


def task_data_dir() -> str:
  """A GLUE-layout directory: SST-2/ links to --sst2_dir; AGNews/ is --agnews_file split."""
  directory = os.path.join(FLAGS.workdir, "tasks")
  os.makedirs(directory, exist_ok=True)
  link = os.path.join(directory, "SST-2")
  if not os.path.islink(link):
    os.symlink(os.path.abspath(FLAGS.sst2_dir), link)
  agnews = os.path.join(directory, "AGNews")
  if not os.path.isdir(agnews):
    with open(FLAGS.agnews_file, encoding="utf-8") as f:
      rows = [line for line in f if line.strip()]
    if len(rows) <= FLAGS.agnews_test_examples:
      raise ValueError(f"{FLAGS.agnews_file} has {len(rows)} rows: not more than "
                       f"--agnews_test_examples={FLAGS.agnews_test_examples}.")
    random.Random(0).shuffle(rows)
    staging = agnews + ".tmp"
    os.makedirs(staging, exist_ok=True)
    for file_name, part in (("dev.tsv", rows[:FLAGS.agnews_test_examples]),
                            ("train.tsv", rows[FLAGS.agnews_test_examples:])):
      with open(os.path.join(staging, file_name), "w", encoding="utf-8") as f:
        f.writelines(part)
    os.rename(staging, agnews)
  return directory


def at_step(record: dict, step: int) -> dict:
  """The record of a pretraining run as it stood at an earlier kept `step`."""
  if str(step) not in record["evals"]:
    raise ValueError(f"--curve_steps: {record['workdir']} kept no checkpoint of step {step} "
                     f"(it has {sorted(int(s) for s in record['evals'])}); pretrain it again "
                     "into a new --workdir with these --curve_steps.")
  fraction = step / record["steps"]
  return dict(record, name=f"{record['name']}_step{step}", steps=step, init_step=step,
              seconds=record["seconds"] * fraction,
              quiet_seconds=record["quiet_seconds"] * fraction,
              tokens=int(record["tokens"] * fraction), eval=record["evals"][str(step)])


def fine_tune(task: str, arm: str, init_checkpoint: str, random_init: bool,
              init_step: int = 0) -> dict:
  workdir = os.path.join(FLAGS.workdir, f"{task}_{arm}")
  seeds = tuple(int(s) for s in FLAGS.seeds)
  results_path = os.path.join(workdir, seeds_lib.RESULTS_FILE)
  if os.path.exists(results_path):
    results = _read_json(results_path)
    if [s["seed"] for s in results["seeds"]] == list(seeds):
      return results
  config = glue_configs.get_config(task)
  config.update(dict(
      init_checkpoint=init_checkpoint, init_checkpoint_step=init_step,
      random_init=random_init, data_dir=task_data_dir(),
      seq_len=FLAGS[f"{task}_seq_len"].value, seeds=seeds, log_every_steps=200,
      max_train_examples=FLAGS.sst2_train_examples if task == "sst2" else 0))
  return finetune.finetune_and_evaluate(config, workdir)


def _accuracies(results) -> list[float]:
  return [s["best"]["metrics"]["validation"]["accuracy"] for s in results["seeds"]]


def plot(rows, path):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  figure, axes = plt.subplots(1, len(FLAGS.tasks), figsize=(5 * len(FLAGS.tasks), 3.6))
  for axis, task in zip(np.atleast_1d(axes), FLAGS.tasks):
    for index, row in enumerate(rows):
      accuracies = row["tasks"][task]["accuracies"]
      axis.scatter([index] * len(accuracies), accuracies, color="tab:blue", s=14, alpha=0.6)
      axis.hlines(np.median(accuracies), index - 0.3, index + 0.3, color="black")
    axis.set_xticks(range(len(rows)), [row["arm"] for row in rows], rotation=20, ha="right")
    axis.set_title(f"{task}: accuracy per seed (bar: median)")
    axis.grid(axis="y", alpha=0.3)
  figure.tight_layout()
  figure.savefig(path, dpi=120)


def plot_curve(rows, path):
  """Median accuracy (bars: min-max over seeds) against ELECTRA's pretraining minutes, with
  random init's median and range as a band."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  curve = sorted((row for row in rows if row["pretrain"] and
                  row["pretrain"]["workdir"].endswith("pretrain_electra")),
                 key=lambda row: row["pretrain"]["steps"])
  random_row = next((row for row in rows if row["pretrain"] is None), None)
  figure, axes = plt.subplots(1, len(FLAGS.tasks), figsize=(5 * len(FLAGS.tasks), 3.6))
  for axis, task in zip(np.atleast_1d(axes), FLAGS.tasks):
    minutes = [row["pretrain"]["quiet_seconds"] / 60 for row in curve]
    scores = [row["tasks"][task]["accuracies"] for row in curve]
    medians = np.array([np.median(a) for a in scores])
    spread = np.array([[m - min(a) for m, a in zip(medians, scores)],
                       [max(a) - m for m, a in zip(medians, scores)]])
    axis.errorbar(minutes, medians, yerr=spread, marker="o", capsize=3, label="ELECTRA")
    if random_row is not None:
      accuracies = random_row["tasks"][task]["accuracies"]
      axis.axhspan(min(accuracies), max(accuracies), color="gray", alpha=0.2)
      axis.axhline(np.median(accuracies), color="gray", label="random init")
    axis.set_xlabel("pretraining minutes (median throughput)")
    axis.set_title(f"{task}: median accuracy [min-max]")
    axis.grid(alpha=0.3)
    axis.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=120)


def pretrained_arms(steps: int) -> tuple[list[tuple[str, dict | None]], dict]:
  """([(label, pretraining record or None for random init)] of every arm --arms asks for,
  the pretraining record whose size and tokenizer random init takes)."""
  def wanted(name):
    return not FLAGS.arms or name in FLAGS.arms

  equal_time = FLAGS.equal_wallclock and wanted("electra_equal_time")
  curve_steps = sorted(int(step) for step in FLAGS.curve_steps)
  if any(not 0 < step < steps for step in curve_steps):
    raise app.UsageError(f"--curve_steps={FLAGS.curve_steps}: expected steps between 0 and "
                         f"ELECTRA's {steps}.")
  ablations = [preset for preset in FLAGS.ablations if wanted(preset)]
  want_amos = wanted("amos") or equal_time
  # Random init alone still needs a run to take its size and tokenizer from: the cheapest.
  want_electra = (wanted("electra") or curve_steps or equal_time
                  or not (want_amos or ablations))
  amos_steps = FLAGS.amos_steps or steps
  # The cheapest arm first, so that its fine-tuning can start the soonest.
  electra = pretrain("electra", "electra", steps, keep_steps=curve_steps) if want_electra else None
  amos = pretrain("amos", "amos", amos_steps) if want_amos else None
  arms = [("random init", None)] if wanted("random") else []
  if wanted("electra"):
    arms.append(("ELECTRA", electra))
  # After the full run, so that its fine-tuning (the comparison that counts) comes first.
  arms += [(f"ELECTRA at step {step}", at_step(electra, step)) for step in curve_steps]
  if equal_time:
    # At each run's median throughput, so that other work on the machine during part of a
    # run does not move the comparison.
    equal_steps = int(round(amos["quiet_seconds"] * electra["steps"] / electra["quiet_seconds"]))
    arms.append(("ELECTRA, AMOS's wall-clock",
                 pretrain("electra_equal_time", "electra", equal_steps)))
  if wanted("amos"):
    arms.append(("AMOS", amos))
  arms += [(f"AMOS :{preset}", pretrain(preset, preset, amos_steps)) for preset in ablations]
  size_source = electra or amos or next(record for _, record in arms if record)
  return arms, size_source


def table(rows) -> str:
  """The markdown table: pretraining figures, then per task median [min-max] accuracy and
  the median's gain over random init in points (when random init is among the rows)."""
  first = rows[0]["tasks"]
  sizes = ", ".join(f"{TASK_NAMES[task]} {first[task]['num_train_examples']} train / "
                    f"{first[task]['num_eval_examples']} eval rows" for task in FLAGS.tasks)
  random_row = next((row for row in rows if row["pretrain"] is None), None)
  lines = [f"{FLAGS.preset} preset; fine-tuning {sizes}; seeds {','.join(FLAGS.seeds)}; "
           "median [min-max] accuracy, (gain over random init in points).", "",
           "| arm | pretrain steps | minutes (median throughput) | tokens "
           "| eval MLM acc (deepest) | eval RTD AUC | " + " | ".join(TASK_NAMES[task] for task in FLAGS.tasks) + " |",
           "| --- " * (6 + len(FLAGS.tasks)) + "|"]
  for row in rows:
    record = row["pretrain"]
    if record:
      mlm = [v for k, v in sorted(record["eval"].items()) if "mlm_accuracy" in k]
      columns = [str(record["steps"]), f"{record['quiet_seconds'] / 60:.1f}",
                 f"{record['tokens'] / 1e6:.1f}M", f"{mlm[-1]:.3f}",
                 f"{record['eval']['eval/rtd_auc']:.3f}"]
    else:
      columns = ["-"] * 5
    for task in FLAGS.tasks:
      scores = row["tasks"][task]
      cell = (f"{scores['median']:.3f} [{min(scores['accuracies']):.3f}-"
              f"{max(scores['accuracies']):.3f}]")
      if random_row is not None and record is not None:
        cell += f" ({100 * (scores['median'] - random_row['tasks'][task]['median']):+.1f})"
      columns.append(cell)
    lines.append(f"| {row['arm']} | " + " | ".join(columns) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  unknown = set(FLAGS.tasks) - set(TASK_NAMES)
  if unknown:
    raise app.UsageError(f"--tasks: unknown {sorted(unknown)}; expected {list(TASK_NAMES)}.")
  os.makedirs(FLAGS.workdir, exist_ok=True)
  steps = FLAGS.pretrain_steps or PRESETS[FLAGS.preset].get_config().num_train_steps
  arms, size_source = pretrained_arms(steps)

  rows = []
  for arm, record in arms:
    row = {"arm": arm, "pretrain": record, "tasks": {}}
    for task in FLAGS.tasks:
      # Random init: the same size and tokenizer, not the weights.
      init = record or size_source
      results = fine_tune(task, record["name"] if record else "random", init["workdir"],
                          random_init=record is None,
                          init_step=record.get("init_step", 0) if record else 0)
      accuracies = _accuracies(results)
      row["tasks"][task] = {"accuracies": accuracies, "median": float(np.median(accuracies)),
                            "recipe": results["recipe"],
                            "num_train_examples": results["num_train_examples"],
                            "num_eval_examples": results["num_eval_examples"]["validation"]}
    rows.append(row)

  flag_values = {flag.name: flag.value for flag in FLAGS.get_key_flags_for_module(sys.argv[0])}
  atomic_file.write_json(os.path.join(FLAGS.workdir, "quality.json"),
                         {"flags": flag_values, "rows": rows})
  plot(rows, os.path.join(FLAGS.workdir, "quality.png"))
  if FLAGS.curve_steps:
    plot_curve(rows, os.path.join(FLAGS.workdir, "quality_curve.png"))
  print(table(rows))
  logging.info("Wrote %s and quality.png", os.path.join(FLAGS.workdir, "quality.json"))


if __name__ == "__main__":
  app.run(main)
