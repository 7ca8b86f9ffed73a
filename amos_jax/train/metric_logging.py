"""Where metrics go: TensorBoard (clu's writer) and DIR/metrics.jsonl.

Not to the log: the training loop writes one progress line per log step itself, and clu's
LoggingWriter would repeat every scalar after it.
"""

import json
import math
import os
from typing import Any, Mapping

import jax
from clu import metric_writers


class JsonlWriter(metric_writers.MetricWriter):
  """Appends one JSON object per step with scalars: {"step": ..., name: value, ...}."""

  def __init__(self, path: str):
    self._file = open(path, "a", encoding="utf-8")

  def write_scalars(self, step: int, scalars: Mapping[str, Any]):
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
    self._file.flush()

  def close(self):
    self._file.close()


def create_writer(workdir: str) -> metric_writers.MetricWriter:
  """TensorBoard (written asynchronously) + metrics.jsonl on the first host; none elsewhere."""
  if jax.process_index() > 0:
    return metric_writers.MultiWriter([])
  return metric_writers.MultiWriter([
      metric_writers.AsyncWriter(
          metric_writers.SummaryWriter(os.path.join(workdir, "tensorboard"))),
      JsonlWriter(os.path.join(workdir, "metrics.jsonl")),
  ])


def read_metrics(workdir: str) -> list[dict]:
  """The records of DIR/metrics.jsonl, in order."""
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as file:
    return [json.loads(line) for line in file if line.strip()]
