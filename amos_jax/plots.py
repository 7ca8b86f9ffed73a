"""PNG plots of a workdir's metrics.jsonl, for people who would rather look than read.

python -m amos_jax.plots --workdir=/tmp/amos_tiny [--out=/tmp/amos_tiny/plots]

Writes losses.png, accuracies.png, mixture_weights.png (the adversarial curriculum: how the
learned mixture shifts between generator depths over training), learning_rate.png and
throughput.png. `plot_metrics(records, out_dir)` does the same from a notebook.
"""

import os
from typing import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")  # Files only: works without a display, on servers and in tests.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from amos_jax import errors
from amos_jax.train import metric_logging


class MetricsError(errors.InputError):
  """metrics.jsonl is missing or holds nothing to plot."""


def load_records(workdir: str) -> list[dict]:
  """The records of DIR/metrics.jsonl, or a MetricsError that says what is wrong."""
  path = os.path.join(workdir, "metrics.jsonl")
  try:
    records = metric_logging.read_metrics(workdir)
  except FileNotFoundError as error:
    raise MetricsError(f"No metrics in {workdir}: {path} does not exist. Is this a "
                       "pretraining workdir, and has it logged a step yet?") from error
  if not records:
    raise MetricsError(f"{path} is empty: nothing has been logged yet.")
  return records


def _latest_per_step(records: Iterable[dict]) -> list[dict]:
  """One record per step (the last written), by step.

  A run resumed from a checkpoint logs again the steps after that checkpoint; the later
  records are the ones the final model continued from.
  """
  by_step = {}
  for record in records:
    by_step[record["step"]] = record
  return [by_step[step] for step in sorted(by_step)]


def _series(records: Sequence[dict], key: str):
  """(steps, values) of `key`; "nan"/"inf" strings (JSON has no NaN) become floats."""
  steps, values = [], []
  for record in records:
    if key in record:
      steps.append(record["step"])
      values.append(float(record[key]))
  return steps, values


def _depth_keys(records: Sequence[dict], name: str) -> list[tuple[int, str]]:
  """[(depth, "name/depth_k"), ...] present in the records, shallowest first."""
  return metric_logging.depth_keys({key for record in records for key in record}, name)


def _finish(fig, axes, path: str) -> str:
  for ax in axes:
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.get_legend() is None and ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize="small")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def _plot_losses(train, evals, path):
  del evals
  fig, (total, mlm, rtd) = plt.subplots(1, 3, figsize=(15, 4))
  total.plot(*_series(train, "loss"))
  total.set_title("total loss (MLM + disc_weight x RTD)")
  for depth, key in _depth_keys(train, "mlm_loss"):
    mlm.plot(*_series(train, key), label=f"depth {depth}")
  mlm.set_title("generator MLM loss per depth")
  rtd.plot(*_series(train, "rtd_loss"))
  rtd.set_title("discriminator RTD loss")
  return _finish(fig, (total, mlm, rtd), path)


def _plot_accuracies(train, evals, path):
  fig, (mlm, rtd) = plt.subplots(1, 2, figsize=(12, 4))
  for index, (depth, key) in enumerate(_depth_keys(train, "mlm_accuracy")):
    color = f"C{index}"
    mlm.plot(*_series(train, key), color=color, alpha=0.7, label=f"train, depth {depth}")
    eval_steps, eval_values = _series(evals, f"eval/{key}")
    if eval_steps:
      mlm.plot(eval_steps, eval_values, "o--", color=color, label=f"eval, depth {depth}")
  mlm.set_title("generator MLM accuracy per depth")
  rtd.plot(*_series(train, "rtd_accuracy"), color="C0", alpha=0.7, label="train accuracy")
  for key, style, color, label in (("eval/rtd_accuracy", "o--", "C0", "eval accuracy"),
                                   ("eval/rtd_auc", "s--", "C3", "eval AUC")):
    eval_steps, eval_values = _series(evals, key)
    if eval_steps:
      rtd.plot(eval_steps, eval_values, style, color=color, label=label)
  rtd.set_title("discriminator replaced-token detection")
  return _finish(fig, (mlm, rtd), path)


def _plot_mixture_weights(train, evals, path):
  del evals
  fig, ax = plt.subplots(figsize=(9, 4.5))
  depth_keys = _depth_keys(train, "mixture_weight")
  complete = [r for r in train if all(key in r for _, key in depth_keys)]
  weights = [[float(r[key]) for r in complete] for _, key in depth_keys]
  # Stacked: the weights of a masked position sum to 1, so the bands show how the mixture
  # that replacements are sampled from is split between the depths as the curriculum moves.
  ax.stackplot([r["step"] for r in complete], weights,
               labels=[f"depth {depth}" for depth, _ in depth_keys], alpha=0.8)
  ax.set_ylim(0, 1)
  ax.margins(x=0)
  ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))  # Off the bands.
  ax.set_ylabel("mean mixture weight over masked tokens")
  ax.set_title("adversarial curriculum: mixture weight per generator depth")
  return _finish(fig, (ax,), path)


def _plot_learning_rate(train, evals, path):
  del evals
  fig, ax = plt.subplots(figsize=(7, 4))
  ax.plot(*_series(train, "learning_rate"))
  ax.set_title("learning rate")
  return _finish(fig, (ax,), path)


def _plot_throughput(train, evals, path):
  del evals
  fig, (tokens, mfu) = plt.subplots(1, 2, figsize=(12, 4))
  tokens.plot(*_series(train, "tokens_per_s"))
  tokens.set_title("throughput (tokens/s, all devices)")
  steps, values = _series(train, "mfu")
  mfu.plot(steps, [100 * v for v in values])
  mfu.set_title("model FLOPs utilisation (%)")
  return _finish(fig, (tokens, mfu), path)


# File name -> (plotting function, a train key without which the plot is left out).
PLOTS = {
    "losses.png": (_plot_losses, "loss"),
    "accuracies.png": (_plot_accuracies, "rtd_accuracy"),
    "mixture_weights.png": (_plot_mixture_weights, "mixture_weight/depth_"),
    "learning_rate.png": (_plot_learning_rate, "learning_rate"),
    "throughput.png": (_plot_throughput, "tokens_per_s"),
}


def _has(records: Sequence[dict], key_prefix: str) -> bool:
  return any(key.startswith(key_prefix) for r in records for key in r)


def plot_metrics(records: Sequence[dict], out_dir: str) -> list[str]:
  """Writes one PNG per plot in PLOTS to `out_dir`; returns their paths.

  A plot whose metrics were never logged (e.g. an old run without `tokens_per_s`) is left
  out rather than drawn empty.
  """
  train = _latest_per_step(r for r in records if "loss" in r)
  evals = _latest_per_step(r for r in records if any(k.startswith("eval/") for k in r))
  if not train:
    raise MetricsError("No training records (with a 'loss') to plot.")
  os.makedirs(out_dir, exist_ok=True)
  paths = []
  for file_name, (plot, required_key) in PLOTS.items():
    if _has(train, required_key):
      paths.append(plot(train, evals, os.path.join(out_dir, file_name)))
  return paths


def _main():
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  from amos_jax import cli_errors  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("workdir", None, "Pretraining workdir holding metrics.jsonl.")
  flags.DEFINE_string("out", None, "Where to write the PNGs; default <workdir>/plots.")
  flags.mark_flags_as_required(["workdir"])

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    workdir = flags.FLAGS.workdir
    records = load_records(workdir)
    paths = plot_metrics(records, flags.FLAGS.out or os.path.join(workdir, "plots"))
    for path in paths:
      print(path)

  cli_errors.run(main)


if __name__ == "__main__":
  _main()
