"""Entry points re-execute once with glibc's huge-page tunable (amos_jax/host_memory.py)."""

import os
import platform
import subprocess
import sys

import pytest

from amos_jax import host_memory

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRINT_ENV = ("from amos_jax import host_memory; import os; "
             "print('before', flush=True); host_memory.reexec_with_huge_pages(); "
             "print(os.environ.get('GLIBC_TUNABLES'), os.environ.get(host_memory.OPT_OUT))")


def run(env):
  result = subprocess.run([sys.executable, "-c", PRINT_ENV], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
  return result.stdout.split("\n")


def clean_env(**extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("GLIBC_TUNABLES", host_memory.OPT_OUT)}
  return dict(env, PYTHONPATH=REPO, **extra)


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
                    reason="glibc tunables exist on Linux with glibc only")
def test_reexecutes_once_keeping_other_tunables():
  lines = run(clean_env(GLIBC_TUNABLES="glibc.malloc.arena_max=4"))
  # "before" twice: the original process and the re-executed one; then the new environment.
  assert lines[:3] == ["before", "before",
                       "glibc.malloc.arena_max=4:glibc.malloc.hugetlb=1 1"], lines


def test_opt_out_and_already_set_leave_the_process_alone():
  assert run(clean_env(**{host_memory.OPT_OUT: "1"}))[:2] == ["before", "None 1"]
  tunables = "glibc.malloc.hugetlb=0"
  assert run(clean_env(GLIBC_TUNABLES=tunables))[:2] == ["before", f"{tunables} None"]
