"""The XLA flags every test process runs with (conftest.py; the subprocesses tests start).

LLVM's optimisation level 0 for XLA's CPU code: compiling dominates the suite's time (a tiny
AMOS train step on 8 emulated devices: 32.5 s at the default level, 21.7 s at 0, its losses
equal to the last printed digit, measured 2026-12-07), and the tests' programs are tiny. HLO
passes, fusion and numerics are XLA's own and unchanged; only the machine code is less tuned.
"""

import os

FAST_COMPILE = "--xla_backend_optimization_level=0"


def subprocess_env(devices: int | None = None, **extra: str) -> dict[str, str]:
  """This process's environment for a child JAX process: the fast-compile flag, and
  `devices` emulated CPU devices (None: XLA's default, one), then `extra`."""
  env = {k: v for k, v in os.environ.items() if not k.startswith("XLA_")}
  flags = FAST_COMPILE + (f" --xla_force_host_platform_device_count={devices}" if devices else "")
  return {**env, "XLA_FLAGS": flags, **extra}
