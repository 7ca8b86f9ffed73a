"""Documents from text files/globs or a prepared TFDS dataset, with bad input counted."""

import contextlib
import dataclasses
import gzip
import os
from typing import Iterator
import zlib

from amos_jax import errors
from amos_jax.data import files as files_lib

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


def resolve_text_files(text_files: str, files=None) -> list[str]:
  """Expands comma-separated paths/globs (empty: the bundled sample), sorted, deduplicated;
  `files` (default: files.LocalFiles) finds them."""
  files = files or files_lib.LocalFiles()
  patterns = [p.strip() for p in text_files.split(",") if p.strip()] or [SAMPLE_PATH]
  paths = {}  # A dict keeps the first occurrence's order and drops repeats.
  for pattern in patterns:
    matches = files.match(pattern)
    if not matches:
      raise FileNotFoundError(f"data.text_files: {pattern!r} matches no file.")
    paths.update(dict.fromkeys(matches))
  return list(paths)


def _skip_line(f) -> int:
  """Reads past the next newline in bounded chunks; returns the bytes read."""
  skipped = 0
  while True:
    chunk = f.readline(_READ_CHUNK_BYTES)
    skipped += len(chunk)
    if not chunk or chunk.endswith(b"\n"):
      return skipped


def _lines(f, offset: int, max_line_bytes: int) -> Iterator[tuple[int, int, str | None]]:
  """(offset, bytes, text) per line of binary file `f` from `offset`, where `f` stands; text is
  None for a line skipped as over-long (read on in bounded chunks, never whole) or not UTF-8."""
  while True:
    line = f.readline(max_line_bytes + 1)
    if not line:
      return
    size = len(line)
    if size > max_line_bytes:
      if not line.endswith(b"\n"):
        size += _skip_line(f)
      yield offset, size, None
    else:
      try:
        yield offset, size, line.decode("utf-8").rstrip("\r\n")
      except UnicodeDecodeError:
        yield offset, size, None
    offset += size


def range_documents(f, start: int, end: int | None, document_split: str, max_line_bytes: int,
                    stats: SourceStats) -> Iterator[str]:
  """Documents of binary file `f` whose first line starts in bytes [start, end) (end None: the
  end of the file): blank-line-separated blocks, or one per line.

  Cutting a file at any offsets and reading each range gives every document exactly once,
  in order. A range owns the lines that start in it, and a block document belongs to the
  range that holds the blank line just before it (the first block of the file to the range
  at 0): a range skips the block it starts inside, reads on past `end` to finish its last
  block, and stops at the first blank line past `end`. A skipped line (over-long or not
  UTF-8) is dropped without ending a block. Only owned lines are counted in `stats`.
  """
  if document_split not in ("blank_line", "line"):
    raise errors.InputError(
        f"data.document_split must be 'blank_line' or 'line', got {document_split!r}.")
  offset = 0
  if start > 0:
    f.seek(start - 1)  # The line holding byte start - 1 began before the range.
    offset = start - 1 + _skip_line(f)
  owned_bytes = 0
  in_block = start == 0  # Content lines before the range's first blank line are not its own.
  block = []
  for line_start, size, text in _lines(f, offset, max_line_bytes):
    owned = end is None or line_start < end
    if owned:
      owned_bytes += size
      stats.text_bytes += size
      if text is None:
        if size > max_line_bytes:
          stats.skipped_long_lines += 1
        else:
          stats.skipped_non_utf8_lines += 1
    elif document_split == "line" or not in_block:
      break  # Past the range, only the end of its last block is still its own.
    if text is None:
      continue
    if document_split == "line":
      if text.strip():
        stats.documents += 1
        yield text
    elif text.strip():
      if in_block:
        block.append(text)
    else:
      if block:
        stats.documents += 1
        yield "\n".join(block)
        block = []
      if not owned:
        break
      in_block = True
  if block:
    stats.documents += 1
    yield "\n".join(block)
  if start == 0 and owned_bytes == 0:  # Counts an empty .gz too.
    stats.empty_files += 1


def open_text(path: str, raw):
  """The text of `path` from `raw`, the file opened in binary (by `open` or Beam's
  filesystems): gzip-decoded when the name ends in .gz."""
  return gzip.GzipFile(fileobj=raw, mode="rb") if path.endswith(".gz") else raw


@contextlib.contextmanager
def gzip_errors(path: str) -> Iterator[None]:
  """Makes a damaged gzip stream read in this context one clear error naming `path`."""
  try:
    yield
  except (gzip.BadGzipFile, EOFError, zlib.error) as e:
    raise errors.InputError(f"{path} is not a readable gzip file ({e}).") from e


def text_documents(paths: list[str], document_split: str, max_line_bytes: int,
                   stats: SourceStats) -> Iterator[str]:
  """Documents of whole text files, in order: blank-line-separated blocks, or one per line."""
  for path in paths:
    stats.files += 1
    with open(path, "rb") as raw, open_text(path, raw) as f, gzip_errors(path):
      yield from range_documents(f, 0, None, document_split, max_line_bytes, stats)


def tfds_builder(name: str, data_dir: str):
  """The builder of a TFDS dataset, imported here: text-only runs skip TF's import cost."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from amos_jax.data import tf_setup  # pylint: disable=g-import-not-at-top
  tf_setup.hide_gpus_from_tf()
  return tfds.builder(name, data_dir=data_dir or None)


def _not_prepared(name: str, split: str, data_dir: str, error: Exception) -> FileNotFoundError:
  return FileNotFoundError(
      f"TFDS dataset {name!r} split {split!r} is not prepared under data_dir "
      f"{data_dir or '(TFDS default)'!r}: {error}. Prepare it first (tfds build) "
      "or point data.tfds_data_dir at it; runs never download.")


def tfds_split_sizes(name: str, split: str, data_dir: str) -> tuple[int, int]:
  """(examples, bytes) of an already prepared TFDS split; never downloads."""
  try:
    info = tfds_builder(name, data_dir).info.splits[split]
  except Exception as e:  # TFDS raises several types for "not prepared here".
    raise _not_prepared(name, split, data_dir, e) from e
  return info.num_examples, info.num_bytes


def tfds_documents(name: str, split: str, data_dir: str, text_key: str,
                   stats: SourceStats) -> Iterator[str]:
  """Documents of an already prepared TFDS dataset's `split` (a slice such as train[0:100]
  too), in its order; never downloads."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds_builder(name, data_dir)
    dataset = builder.as_dataset(split=split, shuffle_files=False)
  except Exception as e:  # TFDS raises several types for "not prepared here".
    raise _not_prepared(name, split, data_dir, e) from e
  if text_key not in builder.info.features:
    raise errors.InputError(f"TFDS dataset {name!r} has no feature {text_key!r}; it has "
                            f"{sorted(builder.info.features.keys())}. Set data.tfds_text_key.")
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
