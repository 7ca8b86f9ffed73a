"""notebooks/: each runs top to bottom on CPU with small settings, so they never rot."""

import base64
import json
import os

import nbclient
import nbformat
import pytest

from amos_jax.train import metric_logging
from tests import xla_test_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(REPO, "notebooks")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def set_parameters(notebook, **values):
  """Rewrites `NAME = ...` lines of the cell tagged `parameters` (as papermill would)."""
  [cell] = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
  lines = cell.source.splitlines()
  for name, value in values.items():
    [index] = [i for i, line in enumerate(lines) if line.startswith(f"{name} = ")]
    lines[index] = f"{name} = {value!r}"
  cell.source = "\n".join(lines)


def execute(name, tmp_path, **parameters):
  """Runs notebooks/<name> in a fresh kernel from notebooks/, as a reader would."""
  notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
  set_parameters(notebook, **parameters)
  # One CPU device: the kernel compiles faster than with the tests' 8 emulated ones.
  env = xla_test_flags.subprocess_env()
  client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                   resources={"metadata": {"path": NOTEBOOKS}})
  client.execute(env={**env, "JAX_PLATFORMS": "cpu"})
  nbformat.write(notebook, str(tmp_path / name))  # To look at when the checks below fail.
  return notebook


def displayed_pngs(notebook):
  return [base64.b64decode(output["data"]["image/png"]) for cell in notebook.cells
          if cell.cell_type == "code" for output in cell.get("outputs", [])
          if "image/png" in output.get("data", {})]


@pytest.mark.slow
def test_quickstart_pretrains_and_shows_the_curriculum(tmp_path):
  workdir = str(tmp_path / "run")
  notebook = execute("quickstart.ipynb", tmp_path, NUM_TRAIN_STEPS=12, LOG_EVERY_STEPS=3,
                     EVAL_EVERY_STEPS=6, WORKDIR=workdir,
                     PEAK_FLOPS_PER_DEVICE=1e11)
  records = metric_logging.read_metrics(workdir)
  assert [r["step"] for r in records if "loss" in r] == [3, 6, 9, 12]
  assert [r["step"] for r in records if "eval/rtd_auc" in r] == [6, 12]
  pngs = displayed_pngs(notebook)
  assert len(pngs) == 3  # The mixture weights, the losses, the accuracies.
  for png in pngs:
    assert png.startswith(PNG_SIGNATURE)
  with open(os.path.join(workdir, "plots", "mixture_weights.png"), "rb") as file:
    assert file.read() == pngs[0]
  printed = "".join(output.get("text", "") for cell in notebook.cells
                    for output in cell.get("outputs", []))
  assert "step 12/12" in printed  # The progress lines reach the notebook.
  assert "held-out RTD AUC at step 12" in printed
  # The last cell reads the figures as the closing summary does (its lines unindented).
  lines = printed.splitlines()
  assert any(line.startswith("Baselines: RTD AUC ") and "(chance: 0.5)" in line
             and "(always the most frequent masked token: " in line for line in lines)
  assert any(line.startswith("Mixture: depth 1 ") for line in lines)


@pytest.mark.slow
def test_finetune_notebook_fine_tunes_and_runs_inference(tmp_path):
  pretrain_workdir, out = str(tmp_path / "pretrain"), str(tmp_path / "sst2")
  # 320 synthetic examples, batch 32, 2 epochs: 20 fine-tuning steps.
  notebook = execute("finetune_and_inference.ipynb", tmp_path, PRETRAIN_WORKDIR=pretrain_workdir,
                     PRETRAIN_STEPS=4, PEAK_FLOPS_PER_DEVICE=1e11, OUT=out,
                     MAX_TRAIN_EXAMPLES=320, MAX_EVAL_EXAMPLES=64, NUM_EPOCHS=2)
  with open(os.path.join(out, "results.json")) as file:
    results = json.load(file)
  assert results["task"] == "sst2" and results["init_kind"] == "pretraining_workdir"
  [seed] = results["seeds"]
  assert seed["num_train_steps"] == 20 and [r["step"] for r in seed["history"]] == [10, 20]
  assert os.path.isfile(os.path.join(out, "seed_0", "best", "params.msgpack"))
  printed = "".join(output.get("text", "") for cell in notebook.cells
                    for output in cell.get("outputs", []))
  assert "No checkpoint in" in printed and "SYNTHETIC demo data" in printed
  assert "median validation: accuracy" in printed
  assert printed.count("positive") + printed.count("negative") >= 4  # predict's lines.
  assert "pooled        (3, 64)" in printed
  assert "same logits as predict: True" in printed
