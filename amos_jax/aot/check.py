"""Compiles a step for a slice this host does not have, and searches for the batch that fits.

`check` compiles one program and reports it (aot/report.py); `find_batch_reports` compiles a few
candidates: per-chip batches in powers of two without accumulation, from the config's own
upwards while they fit or downwards until one does, then (for pretraining) the configured
global batch with the fewest micro-batches that the largest fitting one allows.
"""

import logging
import time
from typing import Callable

import ml_collections

from amos_jax.aot import report as report_lib
from amos_jax.aot import targets
from amos_jax.train import step as step_lib

TASKS = ("pretrain", "glue", "squad")

# (mesh, global batch, micro-batches) -> programs.Program.
Lowering = Callable[[object, int, int], object]

# The largest per-chip batch the search tries: 8x the config's is where memory, not the
# search, should be the limit.
_MAX_GROWTH = 8


def run_check(config: ml_collections.ConfigDict, topology: str, task: str = "pretrain",
              finetune_batch_size: int = 0, find_batch: bool = False,
              first: report_lib.Report | None = None) -> list[report_lib.Report]:
  """The reports of compile_check's compiles (a notebook can call this too): config's
  pretraining step, or for `task` "glue"/"squad" that step for config's encoder, for the
  slice named `topology`; `first`, the configured batch's report from an earlier run, is
  not compiled again."""
  slice_target = targets.target(topology)
  if task == "pretrain":
    lowering = pretraining_lowering(config)
    global_batch = config.batch_size
  else:
    from amos_jax.aot import programs  # pylint: disable=g-import-not-at-top
    lowering = finetuning_lowering(task, config.model)
    global_batch = finetune_batch_size or programs.finetuning_batch_size(task, config.model)
  reports = [first or check(slice_target, lowering, global_batch)]
  if find_batch:
    reports += find_batch_reports(slice_target, lowering, global_batch,
                                  accumulates=task == "pretrain", first=reports[0])
  return reports


def check(slice_target: targets.Target, lowering: Lowering, global_batch: int,
          micro_batches: int = 0, devices=None) -> report_lib.Report:
  """Compiles `lowering`'s program for the slice; an out-of-memory compile is a report too."""
  devices = devices or targets.compile_only_devices(slice_target)
  mesh = step_lib.make_mesh(devices)
  program = lowering(mesh, global_batch, micro_batches)
  start = time.perf_counter()
  context = dict(target=slice_target.name, chip=slice_target.chip, program=program,
                 devices=devices)
  try:
    compiled = program.lowered.compile()
  except Exception as error:  # pylint: disable=broad-except
    if not report_lib.is_out_of_memory(error):
      raise
    return report_lib.from_out_of_memory(error, compile_seconds=time.perf_counter() - start,
                                         **context)
  return report_lib.from_compiled(compiled, compile_seconds=time.perf_counter() - start,
                                  **context)


def find_batch_reports(slice_target: targets.Target, lowering: Lowering, global_batch: int,
               accumulates: bool, first: report_lib.Report | None = None
               ) -> list[report_lib.Report]:
  """Every compile of the search, in order; see the module docstring.

  `first`, the report of the config's own batch if already compiled, is not compiled again.
  From it the search jumps to the power of two that its memory predicts to be the largest
  that fits, then steps a power of two at a time until one fits and the next does not.
  """
  devices = targets.compile_only_devices(slice_target)
  chips = len(devices)
  start_rows = max(1, global_batch // chips)
  reports, fits = [], {}

  def try_rows(rows):
    logging.info("find_batch: %d rows per chip (global %d), no accumulation", rows,
                 rows * chips)
    reports.append(check(slice_target, lowering, rows * chips, 1, devices))
    fits[rows] = reports[-1].fits
    return reports[-1]

  if first is None or first.micro_batches != 1 or first.rows_per_device != start_rows:
    first = try_rows(start_rows)
  fits[start_rows] = first.fits
  rows = _predicted_largest_rows(first) or start_rows
  rows = min(max(rows, 1), start_rows * _MAX_GROWTH)
  while True:
    if rows not in fits:
      try_rows(rows)
    if fits[rows]:
      if rows * 2 > start_rows * _MAX_GROWTH or fits.get(rows * 2) is False:
        largest = rows
        break
      rows *= 2
    else:
      if rows == 1 or fits.get(rows // 2) is True:
        largest = rows // 2 or None
        break
      rows //= 2
  if accumulates and largest is not None and largest < start_rows:
    micro_batches = next(m for m in range(1, start_rows + 1)
                         if start_rows % m == 0 and start_rows // m <= largest)
    logging.info("find_batch: global %d in %d micro-batches", global_batch, micro_batches)
    reports.append(check(slice_target, lowering, global_batch, micro_batches, devices))
  return reports


def _predicted_largest_rows(report: report_lib.Report) -> int | None:
  """The power of two of rows per chip that fills the chip, if temporaries grow in proportion
  to the rows and the rest (state, code) stays; None without the figures."""
  if report.temp_bytes is not None:
    fixed = report.total_bytes - report.temp_bytes
    per_row = report.temp_bytes / report.rows_per_device
  elif report.required_bytes is not None:  # The compiler's count of the temporaries.
    fixed = 0  # The state's bytes are not known; the steps that follow correct the guess.
    per_row = report.required_bytes / report.rows_per_device
  else:
    return None
  rows = int((report.hbm_bytes - fixed) / per_row) if per_row > 0 else 0
  return 1 << (rows.bit_length() - 1) if rows >= 1 else 1


def pretraining_lowering(config: ml_collections.ConfigDict) -> Lowering:
  """Lowers config's pretraining step with the given global batch and accumulation (0: the
  config's own)."""
  from amos_jax.aot import programs  # pylint: disable=g-import-not-at-top

  def lower(mesh, global_batch, micro_batches):
    variant = ml_collections.ConfigDict(config.to_dict())
    variant.batch_size = global_batch
    if micro_batches:
      variant.gradient_accumulation_steps = micro_batches
    return programs.lower_pretraining(variant, mesh)
  return lower


def finetuning_lowering(task: str, model_config: ml_collections.ConfigDict) -> Lowering:
  """Lowers the task's fine-tuning step for this encoder with the given global batch."""
  from amos_jax.aot import programs  # pylint: disable=g-import-not-at-top

  def lower(mesh, global_batch, _):
    return programs.lower_finetuning(task, model_config, global_batch, mesh)
  return lower
