"""The XLA flags every test process runs with (conftest.py; the subprocesses tests start).

XLA's backend optimisation level 0 for CPU code: compiling dominates the suite's time (a tiny
AMOS train step on 8 emulated devices: 32.5 s at the default level, 21.7 s at 0, its losses
equal to the last printed digit, measured 2026-12-07), and the tests' programs are tiny, so
less tuned machine code costs them little. Level 1 runs the tiny step's later steps about
three times faster, but the one whole-suite run at level 1 (2026-12-07, quiet, on this 2-core
CPU) took 1,359 s and 41 min of user CPU against 1,204 s and 36 min at 0 the same day. That
run also had xdist's loadgroup scheduling, which built some module fixtures twice, so it does
not separate the two; level 1 alone has not been timed over the whole suite.
"""

import os

FAST_COMPILE = "--xla_backend_optimization_level=0"


def subprocess_env(**extra: str) -> dict[str, str]:
  """This process's environment for a child JAX process: XLA's default of one CPU device,
  compiled for with FAST_COMPILE, then `extra`."""
  env = {k: v for k, v in os.environ.items() if not k.startswith("XLA_")}
  return {**env, "XLA_FLAGS": FAST_COMPILE, **extra}
