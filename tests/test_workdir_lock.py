"""One run per workdir: a second start fails at once naming the holder; a dead one does not."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from amos_jax.train import workdir_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD_FOREVER = """
import sys, time
from amos_jax.train import workdir_lock
with workdir_lock.hold(sys.argv[1]):
  print("holding", flush=True)
  time.sleep(600)
"""


def test_a_second_run_fails_naming_the_holder_and_a_dead_holder_blocks_nothing(tmp_path):
  workdir = str(tmp_path)
  holder = subprocess.Popen([sys.executable, "-c", HOLD_FOREVER, workdir], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == "holding\n"
    with pytest.raises(workdir_lock.WorkdirInUseError,
                       match=f"{workdir} is in use by another run \\(pid {holder.pid} on host "
                             f"{socket.gethostname()}, since "):
      with workdir_lock.hold(workdir):
        pass
  finally:
    holder.send_signal(signal.SIGKILL)  # Dies without cleaning up: its lock file stays.
    holder.wait()
  with open(os.path.join(workdir, workdir_lock.LOCK_FILE)) as file:
    assert f"pid {holder.pid} " in file.read()
  with workdir_lock.hold(workdir):
    with open(os.path.join(workdir, workdir_lock.LOCK_FILE)) as file:
      assert file.read().startswith(f"pid {os.getpid()} on host {socket.gethostname()}")
  with workdir_lock.hold(workdir):  # Released at the end of the block.
    pass
