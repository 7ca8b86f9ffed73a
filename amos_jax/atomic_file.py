"""Files replaced whole: a reader (or a run restarted after a crash) sees the old content or
the new, never a part.

The content goes to a sibling temporary file named for this host and process (two writers on
a shared disk never share one), is flushed to disk, then renamed over the target: a rename
within one directory is atomic on POSIX file systems. Directories written whole are
`data/atomic_dir.py`'s; Beam's file systems are `data/beam_files.py`'s.
"""

import contextlib
import errno
import json
import os
import socket
from typing import IO, Iterator


@contextlib.contextmanager
def replacing(path: str, mode: str = "w") -> Iterator[IO]:
  """Yields a file open for writing ("w" text in UTF-8, or "wb"); when the body returns,
  its content becomes `path`. If the body raises, `path` is untouched and no temporary file
  is left behind."""
  if mode not in ("w", "wb"):
    raise ValueError(f"mode={mode!r}: expected 'w' or 'wb'.")
  temporary = f"{path}.tmp-{socket.gethostname()}-{os.getpid()}"
  try:
    with open(temporary, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
      yield f
      f.flush()
      _sync(f.fileno())  # Durable before the rename makes it the file.
    os.replace(temporary, path)
  finally:
    with contextlib.suppress(OSError):  # Never hides the error that got here.
      os.remove(temporary)  # Left only when the body or the write failed.


def _sync(fd: int):
  try:
    os.fsync(fd)
  except OSError as e:
    # Some network and FUSE file systems have no fsync; the rename is still atomic there.
    if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
      raise


def write_json(path: str, record, indent: int = 2):
  """`record` as JSON (keys sorted), replacing `path` whole."""
  with replacing(path) as f:
    json.dump(record, f, indent=indent, sort_keys=True)
