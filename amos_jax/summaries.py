"""What a finished command says last: what it did, where its outputs are, what to run next.

Pretraining, fine-tuning and export each end with a few lines whose commands have this
run's directories filled in, so the next step is a copy and paste away.
"""

import os
import shlex

from amos_jax.train import metric_logging

# The evaluation metrics a summary shows (with their per-depth variants); metrics.jsonl and
# the evaluation's own log line have them all.
_HEADLINE_EVAL = ("loss", "rtd_auc", "rtd_accuracy", "mlm_accuracy")


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, minutes = seconds // 3600, seconds // 60 % 60
  if hours:
    return f"{hours}h{minutes:02d}m{seconds % 60:02d}s"
  return f"{minutes}m{seconds % 60:02d}s" if minutes else f"{seconds}s"


def _metrics(values: dict) -> str:
  return ", ".join(f"{name} {value:.4f}" for name, value in sorted(values.items()))


def _depth_values(results: dict, name: str) -> list[tuple[int, float]]:
  """[(k, results["eval/<name>/depth_k"]), ...], shallowest depth first."""
  return [(depth, results[key])
          for depth, key in metric_logging.depth_keys(results, f"eval/{name}")]


def eval_context(results: dict) -> list[tuple[str, str]]:
  """Rows that read a held-out evaluation's figures against what no learning would score.

  `results`: {"eval/<metric>": value}, as evaluation.evaluate returns them (and
  metrics.jsonl records them); rows whose metrics are missing are left out.
  """
  rows = []
  references = []
  if "eval/rtd_auc" in results:
    references.append(f"RTD AUC {results['eval/rtd_auc']:.3f} (chance: 0.5)")
  accuracies = _depth_values(results, "mlm_accuracy")
  if accuracies and "eval/mlm_unigram_accuracy" in results:
    depth, accuracy = accuracies[-1]
    references.append(f"depth-{depth} MLM accuracy {accuracy:.3f} (always the most frequent "
                      f"masked token: {results['eval/mlm_unigram_accuracy']:.3f})")
  if references:
    rows.append(("Baselines", "; ".join(references)))
  weights = _depth_values(results, "mixture_weight")
  if len(weights) > 1:  # One depth (ELECTRA) has nothing to mix.
    rows.append(("Mixture", ", ".join(f"depth {depth} {weight:.2f}" for depth, weight in weights)
                 + f" (mean weight of each generator depth in the distribution replacements "
                 f"are sampled from; 1/{len(weights)} each: no preference)"))
  return rows


def _block(title: str, rows: list[tuple[str, str]], commands: list[str]) -> str:
  width = max(len(label) for label, _ in rows) + 1
  lines = [title] + [f"  {label + ':':<{width}} {value}" for label, value in rows]
  lines += ["Next:"] + [f"  {command}" for command in commands]
  return "\n".join(lines)


def _finetune_command(init_checkpoint: str, task: str = "sst2") -> str:
  return (f"python -m amos_jax.main --config=configs/glue.py:{task} "
          f"--config.init_checkpoint={shlex.quote(init_checkpoint)} "
          f"--config.data_dir=/path/to/glue --workdir={shlex.quote(init_checkpoint + '_' + task)}")


def pretraining(workdir: str, *, start_step: int, step: int, num_train_steps: int,
                seconds: float, final_eval: tuple[int, dict] | None, checkpoint_step: int | None,
                tokenizer_file: str) -> str:
  """The last lines of a pretraining run that went from `start_step` to `step`.

  Args:
    final_eval: (step, {"eval/<metric>": value}) of the run's last evaluation, if any.
    checkpoint_step: the newest saved step.
  """
  if step == num_train_steps:
    title = (f"Pretraining finished: steps {start_step}->{step} of {num_train_steps} in "
             f"{_duration(seconds)}.")
  else:
    title = (f"Pretraining stopped at step {step} of {num_train_steps} (ran {start_step}->"
             f"{step} in {_duration(seconds)}); run the same command again to resume.")
  context = []
  if final_eval is None:
    evaluation = "none in this run"
  else:
    eval_step, results = final_eval
    names = {name: name.split("/", 1)[1] for name in results}
    evaluation = f"step {eval_step}: " + _metrics(
        {short: results[name] for name, short in names.items()
         if short.split("/")[0] in _HEADLINE_EVAL})
    context = eval_context(results)
  quoted = shlex.quote(workdir)
  rows = [
      ("Final eval", evaluation),
      *context,
      ("Checkpoint", os.path.join(workdir, "checkpoints", str(checkpoint_step))
       if checkpoint_step is not None else "none saved"),
      ("Metrics", os.path.join(workdir, "metrics.jsonl")),
      ("TensorBoard", f"tensorboard --logdir={shlex.quote(os.path.join(workdir, 'tensorboard'))}"
       if metric_logging.writes_tensorboard() else "none (TensorFlow is not installed)"),
      ("Tokenizer", os.path.join(workdir, tokenizer_file)),
  ]
  commands = [
      f"python -m amos_jax.plots --workdir={quoted}",
      f"python -m amos_jax.export --workdir={quoted} --out={shlex.quote(workdir + '_export')}",
      _finetune_command(workdir),
  ]
  return _block(title, rows, commands)


def finetuning(workdir: str, results: dict, *, seconds: float, results_file: str) -> str:
  """The last lines of a fine-tuning run (GLUE or SQuAD); `results` is its results.json."""
  task, seeds = results["task"], results["seeds"]
  primary, split = results["primary_metric"], results["primary_split"]
  best = max(seeds, key=lambda seed: seed["best"]["metrics"][split][primary])
  title = (f"Fine-tuning {task} finished: {len(seeds)} seed(s) x "
           f"{seeds[0]['num_train_steps']} steps in {_duration(seconds)}.")
  rows = [(f"Median {split}", _metrics(results["median"][split]))]
  rows += [(f"Median {other}", _metrics(values))
           for other, values in sorted(results["median"].items()) if other != split]
  rows += [
      ("Results", os.path.join(workdir, results_file)),
      ("Best models", ", ".join(seed["checkpoint"] for seed in seeds)),
      (f"Best by {primary}", f"seed {best['seed']} ({best['checkpoint']})"),
  ]
  kept = shlex.quote(best["checkpoint"])
  if task.startswith("squad_v"):  # "squad_v2.0" or "squad_v1.1".
    config_arg, data_dir = f"configs/squad.py:{task[len('squad_v'):]}", "/path/to/squad"
    use = "answer('Who wrote it?', 'It was written by Ada.')"
  else:
    config_arg, data_dir = f"configs/glue.py:{task}", "/path/to/glue"
    use = "predict(['A sentence.'])"
  commands = [
      f"python -m amos_jax.main --config={config_arg} --config.eval_only=True "
      f"--config.init_checkpoint={kept} --config.data_dir={data_dir} "
      f"--workdir={shlex.quote(os.path.join(workdir, 'eval'))}",
      f"python -c \"from amos_jax import inference; "
      f"print(inference.load({best['checkpoint']!r}).{use})\"",
  ]
  return _block(title, rows, commands)


def export(out_dir: str, *, source: str, files: list[str]) -> str:
  """The last lines of an export of `source` (a workdir's checkpoint) to `out_dir`."""
  sizes = ", ".join(f"{name} ({os.path.getsize(os.path.join(out_dir, name)) / 1e6:.1f} MB)"
                    for name in files)
  rows = [("From", source), ("Files", sizes)]
  commands = [
      f"python -c \"from amos_jax import inference; "
      f"print(inference.load({out_dir!r}).encode(['A sentence.']).pooled.shape)\"",
      _finetune_command(out_dir),
  ]
  return _block(f"Exported the encoder to {out_dir}.", rows, commands)
