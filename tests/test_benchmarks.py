"""The benchmark scripts and the prepare-only CLI run and print their figures (not timed)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import hlo_categories

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, timeout=240):
  result = subprocess.run([sys.executable] + args, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
  assert result.returncode == 0, result.stderr[-3000:]
  return result.stdout


@pytest.mark.slow
def test_train_step_benchmark_prints_throughput_and_mfu():
  # A small peak matmul: the default 4096-square one takes 45 s on a slow 2-core machine.
  out = run(["benchmarks/train_step.py", "--config=configs/tiny.py", "--steps=1",
             "--config.batch_size=8", "--peak_matmul_size=512"])
  for line in ("compile:", "step:", "tokens/s:", "model flops/token:", "matmul peak:", "mfu:"):
    assert line in out, out


@pytest.mark.parametrize("script", ["benchmarks/train_step.py", "benchmarks/profile_step.py"])
def test_step_benchmarks_name_a_bad_config_value_in_one_line(script):
  result = subprocess.run(
      [sys.executable, script, "--config=configs/tiny.py",
       "--config.model.relative_position_bucket_function=t5"],
      cwd=REPO, capture_output=True, text=True, timeout=240)
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.strip().splitlines()[-1] == (
      "error: config.model.relative_position_bucket_function='t5': expected one of "
      "('t5_bidirectional', 'amos').")


def test_input_pipeline_benchmark_prints_the_read_rate():
  out = run(["benchmarks/input_pipeline.py", "--vocab_size=1000",
             "--seq_len=64", "--batch_size=16", "--read_seconds=0.5"])
  assert "read: " in out and "tokens/s" in out, out


def test_prepare_throughput_benchmark_prints_rates_and_rows_lost():
  out = run(["benchmarks/prepare_throughput.py", "--vocab_size=300", "--seq_len=64"])
  for line in ("1 files in 1 work units", "units (read, tokenize, pack, write): ", "overall: ",
               "train: ", "packing within units lost 0 rows"):
    assert line in out, out
  assert "MB/s" in out and "tokens/s" in out, out


def test_inference_benchmark_prints_sentences_per_second():
  out = run(["-m", "benchmarks.inference", "--config=configs/tiny.py", "--batch_size=4",
             "--seq_len=32", "--num_batches=1", "--vocab_size=200"])
  assert "sentences/s" in out, out


def test_prepare_mode_writes_the_prepared_data(tmp_path):
  run(["-m", "amos_jax.main", "--mode=prepare", "--config=configs/tiny.py",
       f"--workdir={tmp_path}"])
  metadata = json.load(open(tmp_path / "data" / "metadata.json"))
  assert metadata["splits"]["train"]["rows"] > 0


def test_profile_prints_a_category_table_whose_shares_sum_to_the_whole(tmp_path):
  out = run(["benchmarks/profile_step.py", "--config=configs/tiny.py", "--steps=1",
             "--config.batch_size=8", "--top=5", f"--trace_dir={tmp_path}"])
  lines = out.splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith("category"))
  rows = {}
  for line in lines[start + 1:]:
    name, ms, share = line.split()[:3]
    rows[name] = (float(ms), float(share.rstrip("%")))
    if name == "total":
      break
  assert list(rows) == list(hlo_categories.CATEGORIES) + ["total"], out
  assert abs(sum(share for name, (_, share) in rows.items() if name != "total") - 100) < 0.5
  assert rows["total"][1] == 100.0
  # The tiny step has real work in each of these; an op mapping that broke would leave it empty.
  for category in ("matmul", "attention", "vocabulary", "rng", "optimizer"):
    assert rows[category][0] > 0, out
  assert "top 5 ops:" in out and "host thread events" in out, out
  assert list(tmp_path.glob("**/*.xplane.pb")), "the trace stays in --trace_dir"


def test_convert_checkpoint_benchmark_prints_its_times():
  out = run(["-m", "benchmarks.convert_checkpoint", "--size=small"])
  for line in ("parameters", "read (registry.load):", "write (flax export):"):
    assert line in out, out


def test_arm_diagnostics_figures_follow_their_definitions():
  from benchmarks import arm_diagnostics
  rng = np.random.default_rng(0)
  initial = rng.standard_normal((6, 4)).astype(np.float32)
  final = initial.copy()
  final[:2] *= 1.5  # The two most frequent tokens moved by half their norm.
  ranks = np.array([0, 1, 2, 3, 4, 5])
  bands = arm_diagnostics.band_figures(initial, final, ranks, [2])
  assert [b["tokens"] for b in bands] == [2, 4]
  np.testing.assert_allclose([b["relative_drift"] for b in bands], [0.5, 0.0], atol=1e-6)
  np.testing.assert_allclose(bands[0]["final_norm"], 1.5 * bands[0]["initial_norm"], rtol=1e-6)
  # The probe separates a linearly separable task and is at chance on noise.
  x = rng.standard_normal((400, 3))
  y = (x[:, 0] > 0).astype(int)
  assert arm_diagnostics.ridge_accuracy(x[:300], y[:300], x[300:], y[300:], 1.0) > 0.95
  noise = rng.integers(0, 2, 400)
  assert arm_diagnostics.ridge_accuracy(x[:300], noise[:300], x[300:], noise[300:], 1.0) < 0.65


def test_arm_diagnostics_cls_figures_follow_their_definitions():
  from benchmarks import arm_diagnostics
  from amos_jax import inference

  class FakeEncoder:  # encode() returns the [CLS] vectors the params name.
    params = None

    def encode(self, sentences):
      pooled = np.asarray(self.params)[:len(sentences)]
      return inference.Encoded(pooled[:, None], np.ones(len(pooled), np.int32), pooled)

  rng = np.random.default_rng(0)
  pooled = rng.standard_normal((7, 5)) + 2.0
  figures = arm_diagnostics.cls_figures(FakeEncoder(), pooled, ["s"] * 7)
  unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
  pairs = [unit[i] @ unit[j] for i in range(7) for j in range(7) if i != j]
  np.testing.assert_allclose(figures["mean_cosine"], np.mean(pairs), rtol=1e-6)
  rms = np.sqrt(np.mean(np.square(pooled)))
  np.testing.assert_allclose(figures["spread"], pooled.std(0).mean() / rms, rtol=1e-6)
  alike = arm_diagnostics.cls_figures(FakeEncoder(), np.tile(pooled[:1], (7, 1)), ["s"] * 7)
  np.testing.assert_allclose([alike["mean_cosine"], alike["spread"]], [1.0, 0.0], atol=1e-6)
