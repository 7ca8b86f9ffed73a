"""Ahead-of-time compilation for TPU slices from this CPU host (amos_jax/aot/, compile_check).

The compiles run libtpu's real TPU compiler on compile-only devices: the tiny preset's
steps, the smallest programs that exercise the real shard_map steps.
"""

import dataclasses
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from amos_jax import errors
from amos_jax.aot import check
from amos_jax.aot import programs
from amos_jax.aot import report as report_lib
from amos_jax.aot import targets
from amos_jax.train import build as build_lib
from amos_jax.train import flops as flops_lib
from amos_jax.train import step as step_lib
from configs import tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def _state_bytes(config, tile_padded: bool, devices=None) -> int:
  """The TrainState's bytes per device of `devices` (default: this host's), each leaf's
  shard of it; with tile_padded, each array's two minor dimensions rounded up to the TPU's
  (8, 128) tile, the most its tiled layout can add."""
  mesh = step_lib.make_mesh(devices)
  pretraining = build_lib.build(config, mesh)
  total = 0
  for leaf in jax.tree_util.tree_leaves(build_lib.abstract_state(pretraining, config)):
    shape = list(leaf.sharding.shard_shape(leaf.shape)) or [1]
    if tile_padded:
      shape[-1] = -(-shape[-1] // 128) * 128
      if len(shape) > 1:
        shape[-2] = -(-shape[-2] // 8) * 8
    total += int(np.prod(shape)) * leaf.dtype.itemsize
  return total


def test_slice_names_follow_google_and_cloud_spelling():
  v4 = targets.target("v4-8")  # TensorCores: 4 megacore chips.
  assert (v4.num_chips, v4.topology, v4.chip_config) == (4, "v4:2x2x1", "megacore")
  v5e = targets.target("v5litepod-64")
  assert (v5e.name, v5e.num_chips, v5e.topology) == ("v5e-64", 64, "v5e:8x8")
  assert targets.target("v5p-32").topology == "v5:2x2x4"
  assert targets.target("v6e-8").chips_per_host == (2, 4, 1)  # One 8-chip host.
  devices = targets.compile_only_devices(targets.target("v5e-64"))
  assert len(devices) == 64 and devices[0].device_kind == "TPU v5 lite"
  assert len({device.process_index for device in devices}) == 16


@pytest.mark.parametrize("name", ["v5e-7", "v9-8", "h100", "v4-6"])
def test_unknown_slice_is_one_line_listing_the_known_ones(name):
  with pytest.raises(errors.InputError, match=rf"--topology={name}: unknown; expected one of "
                                              r"v5e-1, .*v5p-8"):
    targets.target(name)


def test_missing_libtpu_is_one_line(monkeypatch):
  monkeypatch.setitem(sys.modules, "libtpu", None)  # import libtpu now raises ImportError.
  with pytest.raises(errors.InputError, match="needs libtpu: pip install -r requirements-tpu"):
    targets.compile_only_devices(targets.target("v5e-4"))


def test_missing_cuda_plugin_is_one_line(monkeypatch):
  monkeypatch.setitem(sys.modules, "jax_plugins.xla_cuda12", None)
  with pytest.raises(errors.InputError, match="needs the CUDA PJRT plugin: pip install -r "
                                              "requirements-gpu-compile.txt"):
    targets.compile_only_devices(targets.target("h100-8"))


@pytest.mark.parametrize("split", [False, True], ids=["replicated", "optimizer_state_split"])
def test_pretraining_step_compiles_for_a_multi_host_slice(split):
  """Tiny on v5e-16 (4 hosts of 4 chips): the multi-host program, with sane memory, its
  optimizer state replicated or split over the 16 chips (config.shard_optimizer_state)."""
  config = tiny.get_config()
  config.shard_optimizer_state = split
  report, = check.run_check(config, "v5e-16")
  assert (report.num_devices, report.num_hosts, report.fits) == (16, 4, True)
  assert report.rows_per_device == config.batch_size // 16
  # Arguments: each chip's part of the state (all of it when replicated; the parameters and
  # a sixteenth of the moments when split), plus its rows and the key. TPUs store arrays in
  # (8, 128) tiles, so the state takes between its exact bytes and those with every array's
  # minor dimensions padded to a whole tile.
  chips = targets.compile_only_devices(targets.target("v5e-16"))
  state_bytes = _state_bytes(config, False, chips)
  rows_bytes = report.rows_per_device * config.seq_len * 4
  assert (state_bytes + rows_bytes <= report.argument_bytes
          <= _state_bytes(config, True, chips) + rows_bytes + 4096)
  if split:  # Less than the replicated state's exact bytes: the program holds split moments.
    assert report.argument_bytes < _state_bytes(tiny.get_config(), False, chips)
  # The new state overwrites the donated one.
  assert report.alias_bytes >= state_bytes
  assert report.total_bytes < report.hbm_bytes
  # Matmuls dominate even tiny's compiled FLOPs: within a small factor of the model count
  # (softmax, LayerNorm, GELU, Adam and the Gumbel sampling are the rest).
  assert 1.0 < report.compiled_flops / report.model_flops < 1.5
  assert 0 < report.mfu_ceiling < 1
  assert "| v5e-16 (4 hosts) | 32 x 64 (2 x 1) |" in report_lib.table([report])


def test_bfloat16_cudnn_step_compiles_for_two_hosts_of_h100s():
  """Base's GPU setting on tiny: bf16 with cuDNN attention, 16 H100s on 2 hosts, no GPU."""
  config = tiny.get_config()
  config.model.dtype = "bfloat16"
  config.model.attention_implementation = "cudnn"
  config.batch_size = 64
  gpu = targets.target("h100-16")
  assert (gpu.platform, gpu.topology) == ("gpu", "1x2x8")
  devices = targets.compile_only_devices(gpu)
  assert devices[0].device_kind == "NVIDIA H100 80GB HBM3"
  assert len({device.process_index for device in devices}) == 2
  program = programs.lower_pretraining(config, step_lib.make_mesh(devices))
  compiled = program.lowered.compile()
  assert "__cudnn$fmha" in compiled.as_text()  # cuDNN's fused attention, forward and back.
  report = report_lib.from_compiled(compiled, target=gpu.name, chip=gpu.chip, program=program,
                                    devices=devices, compile_seconds=0.0)
  assert report.fits and report.rows_per_device == 4
  rows_bytes = report.rows_per_device * config.seq_len * 4
  assert report.argument_bytes >= _state_bytes(config, False) + rows_bytes
  assert report.peak_flops == 989e12  # bfloat16 on an H100 SXM.
  # The cost analysis cannot see into cuDNN's kernels: the roofline adds attention's FLOPs
  # from train/flops.py, so the ceiling cannot pass 100% for want of them.
  assert report.uncounted_flops == (flops_lib.attention_flops_per_token(config)
                                    * report.rows_per_device * config.seq_len)
  assert 0 < report.compiled_flops and 0 < report.mfu_ceiling < 1


@pytest.mark.parametrize("task, seq_len", [("glue", programs.GLUE_SEQ_LEN),
                                           ("squad", programs.SQUAD_SEQ_LEN)])
def test_finetuning_steps_compile_with_the_recipe_batch(task, seq_len):
  config = tiny.get_config()
  config.model.max_position_embeddings = 384
  report, = check.run_check(config, "v5e-4", task=task)
  assert report.fits and (report.global_batch, report.seq_len) == (32, seq_len)
  assert report.compiled_flops > report.model_flops > 0


def test_batch_not_divisible_by_chips_is_one_line():
  config = tiny.get_config()
  config.batch_size = 30
  with pytest.raises(errors.InputError, match=r"config.batch_size=30: expected a multiple of "
                                              r"4 devices"):
    check.run_check(config, "v5e-4")


def test_squad_on_a_short_encoder_is_one_line():
  with pytest.raises(errors.InputError, match=r"--task=squad compiles 384-token rows: expected "
                                              r"config.model.max_position_embeddings >= 384, "
                                              r"not 128"):
    check.run_check(tiny.get_config(), "v5e-4", task="squad")


def test_does_not_fit_exits_1_with_the_compilers_figures():
  """A batch far beyond 16 GiB per chip: the TPU compiler refuses it, and the command says so
  instead of crashing."""
  result = subprocess.run(
      [sys.executable, "-m", "amos_jax.compile_check", "--config=configs/tiny.py",
       "--topology=v5e-4", "--config.batch_size=262144"],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert result.returncode == 1, result.stderr[-2000:]
  assert "| DOES NOT FIT |" in result.stdout
  assert "does not fit" in result.stderr


def _fake_check(max_rows_per_chip):
  """check.check that 'fits' up to max_rows_per_chip micro-batch rows, compiling nothing."""
  def fake(slice_target, lowering, global_batch, micro_batches=0, devices=None):
    del lowering
    rows = global_batch // len(devices) // max(micro_batches, 1)
    return report_lib.Report(
        target=slice_target.name, device_kind="TPU v5 lite", num_devices=len(devices),
        num_hosts=1, global_batch=global_batch, seq_len=512, micro_batches=max(micro_batches, 1),
        compile_seconds=0.0, hbm_bytes=1, fits=rows <= max_rows_per_chip)
  return fake


@pytest.mark.parametrize("start_rows, limit, tried, accumulation", [
    (32, 8, [32, 16, 8], 4),  # Halves to 8 rows, then 32 rows in 4 micro-batches.
    (32, 24, [32, 16], 2),  # 16 fits: 2 micro-batches of 16.
    (4, 100, [4, 8, 16, 32], None),  # Doubles up to 8x and stops; no accumulation needed.
    (4, 9, [4, 8, 16], None),
])
def test_find_batch_search(monkeypatch, start_rows, limit, tried, accumulation):
  chips = 4
  monkeypatch.setattr(check, "check", _fake_check(limit))
  monkeypatch.setattr(targets, "compile_only_devices", lambda _: [object()] * chips)
  reports = check.find_batch_reports(targets.target("v5e-4"), None, start_rows * chips,
                                     accumulates=True)
  searched = [r for r in reports if r.micro_batches == 1]
  assert [r.rows_per_device for r in searched] == tried
  if accumulation is None:
    assert len(reports) == len(searched)
  else:
    assert reports[-1].micro_batches == accumulation and reports[-1].fits
    assert reports[-1].global_batch == start_rows * chips


def test_find_batch_jumps_to_the_batch_the_first_compile_predicts(monkeypatch):
  """16 rows per chip took 2 GiB of temporaries beside 2 GiB of state: 16 GiB fit 112 rows,
  so the search starts at 64 and needs two compiles, not three doublings."""
  monkeypatch.setattr(check, "check", _fake_check(64))
  monkeypatch.setattr(targets, "compile_only_devices", lambda _: [object()] * 4)
  gib = 1 << 30
  first = report_lib.Report(
      target="v5e-4", device_kind="TPU v5 lite", num_devices=4, num_hosts=1, global_batch=64,
      seq_len=512, micro_batches=1, compile_seconds=0.0, hbm_bytes=16 * gib, fits=True,
      argument_bytes=2 * gib, output_bytes=2 * gib, alias_bytes=2 * gib, temp_bytes=2 * gib,
      code_bytes=0)
  reports = check.find_batch_reports(targets.target("v5e-4"), None, 64, accumulates=True,
                                     first=first)
  assert [r.rows_per_device for r in reports] == [64, 128]


def test_report_reads_the_compilers_out_of_memory_message():
  message = ("RESOURCE_EXHAUSTED: XLA:TPU compile permanent error. Ran out of memory in memory "
             "space hbm. Used 29.73G of 15.75G hbm. Exceeded hbm capacity by 13.98G.")
  assert report_lib.is_out_of_memory(RuntimeError(message))
  assert report_lib._required_bytes(message) == int(29.73 * (1 << 30))
  other = "the total memory required for HLO temporaries (29.73G) exceeds available HBM"
  assert report_lib._required_bytes(other) == int(29.73 * (1 << 30))


def test_compile_table_keeps_finished_rows_and_prints_them(tmp_path):
  """benchmarks/compile_table.py resumes: a finished row is read back, not compiled again,
  and the docs' row shows its memory, search and FLOPs."""
  gib = 1 << 30
  first = report_lib.Report(
      target="v5e-8", device_kind="TPU v5 lite", num_devices=8, num_hosts=1, global_batch=256,
      seq_len=512, micro_batches=1, compile_seconds=953.0, hbm_bytes=16 * gib, fits=True,
      argument_bytes=2 * gib, output_bytes=2 * gib, alias_bytes=2 * gib, temp_bytes=12 * gib,
      code_bytes=0, compiled_flops=19.3e12, bytes_accessed=100e9, model_flops=16.7e12,
      peak_flops=197e12, hbm_bytes_per_second=819e9)
  assert report_lib.Report.from_record(first.as_record()) == first
  larger = dataclasses.replace(first, global_batch=512, fits=False)
  out = tmp_path / "table.json"
  out.write_text(json.dumps({"base:v5e-8:preset": {
      "reports": [first.as_record(), larger.as_record()], "searched": True, "seconds": 1.0,
      "date": "2026-12-06", "commit": "abc1234"}}))
  result = subprocess.run([sys.executable, "benchmarks/compile_table.py", f"--out={out}",
                           "--rows=0"], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  # 14 GiB of 16; 32 rows fit and 64 do not; 19.3 and 16.7 TFLOP per 32 x 512 tokens; the
  # roofline is HBM-bound (100 GB at 819 GB/s: 122 ms, against 98 ms of compute), so the
  # ceiling is 16.7 TFLOP / (197 TFLOP/s x 122 ms).
  assert ("| base | v5e-8 | 256 (32) | 14.0 / 16.0 | FITS | 32 | - | 1.18e+09 / 1.02e+09 "
          "(1.16x) | 69.4% | 953 | 2026-12-06, abc1234 |") in result.stdout
