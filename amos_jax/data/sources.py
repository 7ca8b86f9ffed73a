"""Documents from text files/globs or a prepared TFDS dataset, with bad input counted."""

import dataclasses
import glob
import gzip
import os
from typing import Iterator
import zlib

from amos_jax import errors

SAMPLE_PATH = os.path.join(os.path.dirname(__file__), "sample", "kjv.txt.gz")

# Reads are bounded by this, so a file with no newline cannot exhaust memory.
_READ_CHUNK_BYTES = 1 << 20


@dataclasses.dataclass
class SourceStats:
  """What was read and what was skipped (and why), reported by prepare."""
  files: int = 0
  empty_files: int = 0
  documents: int = 0
  text_bytes: int = 0
  skipped_non_utf8_lines: int = 0
  skipped_long_lines: int = 0

  def skips(self) -> dict[str, int]:
    """The nonzero skip counters, for a log line."""
    return {k: v for k, v in dataclasses.asdict(self).items()
            if (k.startswith("skipped") or k == "empty_files") and v}


def resolve_text_files(text_files: str) -> list[str]:
  """Expands comma-separated paths/globs (empty: the bundled sample), sorted, deduplicated."""
  patterns = [p.strip() for p in text_files.split(",") if p.strip()] or [SAMPLE_PATH]
  paths = {}  # A dict keeps the first occurrence's order and drops repeats.
  for pattern in patterns:
    matches = sorted(glob.glob(os.path.expanduser(pattern)))
    matches = [m for m in matches if os.path.isfile(m)]
    if not matches:
      raise FileNotFoundError(f"data.text_files: {pattern!r} matches no file.")
    paths.update(dict.fromkeys(matches))
  return list(paths)


def _lines(path: str, max_line_bytes: int, stats: SourceStats) -> Iterator[str]:
  """Decoded lines of a (possibly gzipped) file; bad or over-long lines are counted and dropped."""
  try:
    yield from _checked_lines(path, max_line_bytes, stats)
  except (gzip.BadGzipFile, EOFError, zlib.error) as e:
    raise errors.InputError(f"{path} is not a readable gzip file ({e}).") from e


def _checked_lines(path: str, max_line_bytes: int, stats: SourceStats) -> Iterator[str]:
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rb") as f:
    while True:
      line = f.readline(max_line_bytes + 1)
      if not line:
        return
      stats.text_bytes += len(line)
      if len(line) > max_line_bytes:
        # Discard the rest of the line in bounded chunks.
        while not line.endswith(b"\n"):
          line = f.readline(_READ_CHUNK_BYTES)
          if not line:
            break
          stats.text_bytes += len(line)
        stats.skipped_long_lines += 1
        continue
      try:
        yield line.decode("utf-8").rstrip("\r\n")
      except UnicodeDecodeError:
        stats.skipped_non_utf8_lines += 1


def text_documents(paths: list[str], document_split: str, max_line_bytes: int,
                   stats: SourceStats) -> Iterator[str]:
  """Documents of text files: blank-line-separated blocks, or one per line."""
  if document_split not in ("blank_line", "line"):
    raise errors.InputError(
        f"data.document_split must be 'blank_line' or 'line', got {document_split!r}.")
  for path in paths:
    stats.files += 1
    bytes_before = stats.text_bytes
    block = []
    for line in _lines(path, max_line_bytes, stats):
      if document_split == "line":
        if line.strip():
          stats.documents += 1
          yield line
      elif line.strip():
        block.append(line)
      elif block:
        stats.documents += 1
        yield "\n".join(block)
        block = []
    if block:
      stats.documents += 1
      yield "\n".join(block)
    if stats.text_bytes == bytes_before:  # Counts an empty .gz too.
      stats.empty_files += 1


def tfds_documents(name: str, split: str, data_dir: str, text_key: str,
                   stats: SourceStats) -> Iterator[str]:
  """Documents of an already prepared TFDS dataset; never downloads."""
  # Imported here: text-only runs skip TF's import cost.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from amos_jax.data import tf_setup  # pylint: disable=g-import-not-at-top
  tf_setup.hide_gpus_from_tf()
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
    dataset = builder.as_dataset(split=split, shuffle_files=False)
  except Exception as e:  # TFDS raises several types for "not prepared here".
    raise FileNotFoundError(
        f"TFDS dataset {name!r} split {split!r} is not prepared under data_dir "
        f"{data_dir or '(TFDS default)'!r}: {e}. Prepare it first (tfds build) "
        "or point data.tfds_data_dir at it; runs never download.") from e
  if text_key not in builder.info.features:
    raise errors.InputError(f"TFDS dataset {name!r} has no feature {text_key!r}; it has "
                            f"{sorted(builder.info.features.keys())}. Set data.tfds_text_key.")
  stats.files += 1
  for example in tfds.as_numpy(dataset):
    raw = example[text_key]
    stats.text_bytes += len(raw)
    try:
      text = raw.decode("utf-8")
    except UnicodeDecodeError:
      stats.skipped_non_utf8_lines += 1
      continue
    if text.strip():
      stats.documents += 1
      yield text


def documents(data_config, stats: SourceStats) -> Iterator[str]:
  """Documents of the source `data_config.source` names, in a fixed order."""
  if data_config.source == "text":
    paths = resolve_text_files(data_config.text_files)
    return text_documents(paths, data_config.document_split, data_config.max_line_bytes,
                          stats)
  if data_config.source == "tfds":
    if not data_config.tfds_name:
      raise errors.InputError("data.source is 'tfds' but data.tfds_name is empty.")
    return tfds_documents(data_config.tfds_name, data_config.tfds_split,
                          data_config.tfds_data_dir, data_config.tfds_text_key, stats)
  raise errors.InputError(f"data.source must be 'text' or 'tfds', got {data_config.source!r}.")
