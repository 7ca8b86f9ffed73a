"""A directory written whole or not at all, by one process at a time.

`exclusive_lock` serializes writers (every host may call prepare on a shared disk);
`write_whole` builds the content in a sibling `<directory>.incomplete-*` and renames it
into place only when the body succeeded, so a reader never sees a half-written directory
and a killed writer leaves only a leftover that the next writer removes.
"""

import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
from typing import Iterator

from absl import logging

INCOMPLETE_SUFFIX = ".incomplete-"


@contextlib.contextmanager
def exclusive_lock(path: str) -> Iterator[None]:
  """Holds an flock on `path` (created if missing): the first caller goes on, the others
  wait. The OS drops the lock when its holder dies, so a crashed run cannot block the next."""
  with open(path, "a") as lock_file:
    try:
      fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      logging.info("Waiting for another process holding %s.", path)
      fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock_file, fcntl.LOCK_UN)


def _clear_leftovers(directory: str, complete_marker: str, setting: str):
  """Removes interrupted writers' temporary directories; refuses a foreign `directory`."""
  for path in glob.glob(glob.escape(directory) + INCOMPLETE_SUFFIX + "*"):
    shutil.rmtree(path, ignore_errors=True)
  if os.path.isdir(directory) and os.listdir(directory):
    raise FileExistsError(
        f"{directory} is not empty but has no {complete_marker}, so amos_jax did not write "
        f"it (it writes the directory whole or not at all). Delete it or set {setting} to "
        "another directory.")


@contextlib.contextmanager
def write_whole(directory: str, *, complete_marker: str, setting: str) -> Iterator[str]:
  """Yields an empty staging directory; when the body returns, it becomes `directory`.

  `directory` must be missing or empty (a non-empty one without `complete_marker`, the
  file whose presence means complete, is someone else's: an error naming `setting`, the
  option that chose the path). Call it under `exclusive_lock`. If the body raises,
  nothing appears at `directory`.
  """
  _clear_leftovers(directory, complete_marker, setting)
  staging = tempfile.mkdtemp(prefix=os.path.basename(directory) + INCOMPLETE_SUFFIX,
                             dir=os.path.dirname(directory))
  try:
    yield staging
    if os.path.isdir(directory):
      os.rmdir(directory)  # Empty: _clear_leftovers checked.
    os.rename(staging, directory)  # The commit: all files appear at once.
  finally:
    shutil.rmtree(staging, ignore_errors=True)  # Only a killed run leaves it behind.
