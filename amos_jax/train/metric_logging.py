"""Where metrics go: TensorBoard (clu's writer) and DIR/metrics.jsonl.

Not to the log: the training loop writes one progress line per log step itself, and clu's
LoggingWriter would repeat every scalar after it. clu's writers need TensorFlow (importing
any of them imports its TensorBoard writer); where TF is not installed, as on accelerator
images that lack it, metrics go to metrics.jsonl alone.
"""

import json
import math
import os
import re
from typing import Any, Iterable, Mapping

from absl import logging
import jax

try:
  from clu import metric_writers
except ImportError:  # No TensorFlow (or no clu): metrics.jsonl only.
  metric_writers = None

from amos_jax import atomic_file

_DEPTH_KEY = re.compile(r"^(?P<name>.+)/depth_(?P<depth>\d+)$")


def depth_keys(keys: Iterable[str], name: str) -> list[tuple[int, str]]:
  """[(k, "<name>/depth_k"), ...] among `keys`, shallowest depth first: the per-depth
  metrics the objective logs (mlm_loss, mlm_accuracy, mixture_weight; "eval/..." held out)."""
  found = set()
  for key in keys:
    match = _DEPTH_KEY.match(key)
    if match and match["name"] == name:
      found.add((int(match["depth"]), key))
  return sorted(found)


class JsonlWriter(metric_writers.MetricWriter if metric_writers else object):
  """Appends one JSON object per step with scalars: {"step": ..., name: value, ...}."""

  def __init__(self, path: str | None, start_step: int | None = None):
    """path None: a writer that keeps nothing (the other hosts' writer, without clu).

    start_step: the step the run starts or resumes at. Records after it are dropped first:
    a run that resumes from an older checkpoint (or starts over with none) logs those steps
    again, and two records of one step would double its time in throughput sums and draw
    two curves in the plots.
    """
    if path and start_step is not None and os.path.exists(path):
      _keep_records_through(path, start_step)
    self._file = open(path, "a", encoding="utf-8") if path else None

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
    if self._file is None:
      return
    record = {"step": int(step)}
    for name, value in scalars.items():
      value = float(value)
      record[name] = value if math.isfinite(value) else str(value)  # JSON has no NaN.
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()

  def write_summaries(self, step, values, metadata=None):
    pass

  def write_images(self, step, images):
    pass

  def write_videos(self, step, videos):
    pass

  def write_audios(self, step, audios, *, sample_rate):
    pass

  def write_texts(self, step, texts):
    pass

  def write_histograms(self, step, arrays, num_buckets=None):
    pass

  def write_hparams(self, hparams):
    pass

  def flush(self):
    if self._file:
      self._file.flush()

  def close(self):
    if self._file:
      self._file.close()


def _keep_records_through(path: str, step: int):
  """Rewrites metrics.jsonl without the records after `step`, and without a line a crash
  left half-written; leaves the file untouched when there is nothing to drop."""
  with open(path, encoding="utf-8") as file:
    lines = file.readlines()
  kept = []
  for line in lines:
    try:
      if json.loads(line)["step"] <= step:
        kept.append(line if line.endswith("\n") else line + "\n")
    except (ValueError, KeyError, TypeError):
      pass  # A torn last line, or not a record.
  if len(kept) == len(lines) and all(line.endswith("\n") for line in lines):
    return
  logging.info("%s: dropped %d records after step %d, which this run logs again.", path,
               len(lines) - len(kept), step)
  with atomic_file.replacing(path) as file:  # A crash here leaves the old file or the new.
    file.writelines(kept)


def writes_tensorboard() -> bool:
  """Whether create_writer writes TensorBoard events (clu, and so TF, can be imported)."""
  return metric_writers is not None


def create_writer(workdir: str, start_step: int | None = None):
  """TensorBoard (written asynchronously) + metrics.jsonl on the first host; none elsewhere.
  Returns a clu MetricWriter, or without clu a JsonlWriter. start_step: see JsonlWriter."""
  if not writes_tensorboard():
    if jax.process_index() > 0:
      return JsonlWriter(None)
    logging.warning("clu's metric writers cannot be imported (they need TensorFlow): no "
                    "TensorBoard events; metrics go to %s only.",
                    os.path.join(workdir, "metrics.jsonl"))
    return JsonlWriter(os.path.join(workdir, "metrics.jsonl"), start_step)
  if jax.process_index() > 0:
    return metric_writers.MultiWriter([])
  return metric_writers.MultiWriter([
      metric_writers.AsyncWriter(
          metric_writers.SummaryWriter(os.path.join(workdir, "tensorboard"))),
      JsonlWriter(os.path.join(workdir, "metrics.jsonl"), start_step),
  ])


def read_metrics(workdir: str) -> list[dict]:
  """The records of DIR/metrics.jsonl, in order."""
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as file:
    return [json.loads(line) for line in file if line.strip()]
