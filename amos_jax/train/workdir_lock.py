"""One run per workdir: two runs training into it (a relaunch while the old job still runs,
a requeued SLURM job) would interleave their checkpoints.

The run holds an exclusive flock on <workdir>/run.lock and writes its host and pid into the
file, for the message a second start fails with. The kernel releases a flock when its
holder dies, however it dies, so a lock file left by a dead run never blocks the next one.
"""

import contextlib
import fcntl
import os
import socket
import time

import jax

from amos_jax import errors

LOCK_FILE = "run.lock"


class WorkdirInUseError(errors.InputError):
  pass


@contextlib.contextmanager
def hold(workdir: str):
  """Holds the workdir's lock while the block runs; WorkdirInUseError if another run holds it.

  Only process 0 locks: the other hosts of a multi-host run belong to its run.
  """
  if jax.process_index() != 0:
    yield
    return
  path = os.path.join(workdir, LOCK_FILE)
  with open(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8") as file:
    try:
      fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = file.read().strip() or "a process that has not yet written its name"
      raise WorkdirInUseError(
          f"{workdir} is in use by another run ({holder}; lock {path}): wait for it to end "
          "or stop it, or pass another --workdir.") from None
    file.truncate(0)
    file.write(f"pid {os.getpid()} on host {socket.gethostname()}, since "
               f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n")
    file.flush()
    try:
      yield
    finally:
      file.truncate(0)  # Closing the file below releases the lock.
