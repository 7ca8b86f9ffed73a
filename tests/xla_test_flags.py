"""The XLA flags every test process runs with (conftest.py; the subprocesses tests start).

XLA's backend optimisation level 1 for CPU code. Compiling is most of the suite's time, but
level 0, which compiles a little faster, leaves the tests' steps three times slower, and
several tests run hundreds of them. Measured 2026-12-07 on this project's 2-core CPU with a
TPU compile running alongside (the tiny AMOS step, batch 8 x 64): compile plus
first step on 8 emulated devices 17.3-20.7 s at level 1, 17.9-20.0 s at 0 and 20.7-24.0 s
at the default; later steps 82 ms (1 device) and 170 ms (8 devices) at level 1, 218 and
318-337 ms at 0, 67 and 156-178 ms at the default. test_train_step's two learning tests and
its 8-against-1 test took 164 s at level 1 and 203 s at 0.
"""

import os

FAST_COMPILE = "--xla_backend_optimization_level=1"


def subprocess_env(**extra: str) -> dict[str, str]:
  """This process's environment for a child JAX process: XLA's default of one CPU device,
  compiled for with FAST_COMPILE, then `extra`."""
  env = {k: v for k, v in os.environ.items() if not k.startswith("XLA_")}
  return {**env, "XLA_FLAGS": FAST_COMPILE, **extra}
