"""Where preparation finds its text files: this machine's disk, through the os module.

beam_files.py extends it to every filesystem Apache Beam reaches (gs://, s3://, hdfs://);
the local driver reads local files only, so that it needs no Beam.
"""

import glob
import os
from typing import BinaryIO

from amos_jax import errors


def is_remote(path: str) -> bool:
  """Whether `path` names a filesystem by its scheme (gs://bucket/...), not a local file."""
  return "://" in path


class LocalFiles:
  """Text files on this machine."""

  def match(self, pattern: str) -> list[str]:
    """The files `pattern` (a path or glob, ~ expanded) matches, sorted."""
    if is_remote(pattern):
      raise errors.InputError(
          f"data.text_files: {pattern!r} is not on this machine; the local driver reads local "
          "files only. Set --config.data.runner=beam to read it through Apache Beam's "
          "filesystems (docs/beam.md).")
    matches = sorted(glob.glob(os.path.expanduser(pattern)))
    return [os.path.abspath(m) for m in matches if os.path.isfile(m)]

  def stat(self, path: str) -> tuple[int, int]:
    """(size in bytes, modification time in ns)."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns

  def open(self, path: str) -> BinaryIO:
    """The file, opened for binary reading."""
    return open(path, "rb")
