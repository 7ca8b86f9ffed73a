"""amos_jax.plots: one valid PNG per plot from a metrics.jsonl, clear errors without one."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from amos_jax import plots

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEPTHS = (1, 2, 3)


def synthetic_records(num_steps=40, eval_every=10):
  """Records shaped like JsonlWriter's: train steps, eval steps, a NaN, a resumed stretch."""
  records = []
  for step in range(1, num_steps + 1):
    progress = step / num_steps
    weights = np.array([1.0 - 0.6 * progress, 0.3, 0.1 + 0.6 * progress])
    weights /= weights.sum()
    record = {"step": step, "loss": 20.0 - 10 * progress, "mlm_loss": 8.0 - 3 * progress,
              "rtd_loss": 0.3 - 0.1 * progress, "rtd_accuracy": 0.8 + 0.1 * progress,
              "replaced_rate": 0.1, "grad_norm": 1.0, "learning_rate": 1e-3 * progress,
              "tokens_per_s": 5000.0 + step, "mfu": 0.01}
    for index, depth in enumerate(DEPTHS):
      record[f"mlm_loss/depth_{depth}"] = 3.0 - progress - 0.1 * depth
      record[f"mlm_accuracy/depth_{depth}"] = 0.1 + 0.3 * progress + 0.05 * depth
      record[f"mixture_weight/depth_{depth}"] = float(weights[index])
    records.append(record)
    if step % eval_every == 0:
      evaluation = {"step": step, "eval/rtd_accuracy": 0.85, "eval/rtd_auc": 0.7 + 0.005 * step}
      for depth in DEPTHS:
        evaluation[f"eval/mlm_accuracy/depth_{depth}"] = 0.2 + 0.01 * step
      records.append(evaluation)
  records[5]["grad_norm"] = "nan"  # As JsonlWriter writes a non-finite value.
  # A resume from step 30 logs steps 31.. again; the later records win.
  records.extend({**r, "loss": r["loss"] - 1} for r in list(records)
                 if r["step"] > 30 and "loss" in r)
  return records


def write_metrics(workdir, records):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "metrics.jsonl"), "w", encoding="utf-8") as file:
    for record in records:
      file.write(json.dumps(record) + "\n")


def assert_png(path):
  assert os.path.getsize(path) > 1000, path
  with open(path, "rb") as file:
    assert file.read(8) == PNG_SIGNATURE, path


def test_plot_metrics_writes_one_png_per_plot(tmp_path):
  paths = plots.plot_metrics(synthetic_records(), str(tmp_path / "plots"))
  assert sorted(os.path.basename(p) for p in paths) == sorted(plots.PLOTS)
  for path in paths:
    assert_png(path)


def test_resumed_steps_keep_the_last_record_and_sort_by_step():
  records = [{"step": 2, "loss": 5.0}, {"step": 1, "loss": 6.0}, {"step": 2, "loss": 4.0}]
  latest = plots._latest_per_step(records)
  assert [(r["step"], r["loss"]) for r in latest] == [(1, 6.0), (2, 4.0)]


def test_plots_missing_from_the_records_are_left_out(tmp_path):
  records = [{k: v for k, v in r.items() if k not in ("tokens_per_s", "mfu")}
             for r in synthetic_records()]
  paths = plots.plot_metrics(records, str(tmp_path))
  assert "throughput.png" not in {os.path.basename(p) for p in paths}
  assert len(paths) == len(plots.PLOTS) - 1


def test_cli_writes_pngs_to_workdir_plots(tmp_path):
  workdir = str(tmp_path / "run")
  write_metrics(workdir, synthetic_records())
  result = subprocess.run([sys.executable, "-m", "amos_jax.plots", f"--workdir={workdir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-3000:]
  for name in plots.PLOTS:
    assert_png(os.path.join(workdir, "plots", name))


def test_missing_metrics_is_a_clear_error(tmp_path):
  with pytest.raises(plots.MetricsError, match="metrics.jsonl does not exist"):
    plots.load_records(str(tmp_path))


def test_empty_metrics_is_a_clear_error(tmp_path):
  write_metrics(str(tmp_path), [])
  with pytest.raises(plots.MetricsError, match="is empty"):
    plots.load_records(str(tmp_path))
  with pytest.raises(plots.MetricsError, match="No training records"):
    plots.plot_metrics([{"step": 10, "eval/rtd_auc": 0.7}], str(tmp_path))


def test_cli_reports_a_missing_file_and_fails(tmp_path):
  result = subprocess.run([sys.executable, "-m", "amos_jax.plots", f"--workdir={tmp_path}"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2
  assert "Traceback" not in result.stderr
  assert result.stderr.splitlines()[-1].startswith("error: No metrics in ")
  assert result.stderr.splitlines()[-1].endswith("has it logged a step yet?")
