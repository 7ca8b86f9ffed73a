"""Ahead-of-time compilation of amos_jax's steps for accelerators this host does not have.

Nothing here runs on a device, so importing the package keeps JAX off any accelerator runtime
(a TPU VM's included) unless the platform was chosen already; the accelerators' compilers are
loaded on their own (targets.py). Import it before anything imports jax.
"""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The CUDA plugin, when installed for GPU targets, logs at INFO that this host has no driver.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
