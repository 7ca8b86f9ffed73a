"""The accelerators amos_jax compiles for ahead of time, by the names users book them under.

A target is a TPU slice ("v5e-8", "v5p-32"; Cloud's "v5litepod-8" works too) or a set of
NVIDIA GPUs ("h100-8": one host of 8; "h200-16": two), whose compile-only devices the
accelerator's own compiler plugin describes on any host (`jax.experimental.topologies`):
libtpu for TPUs, the CUDA PJRT plugin with a target description (gpu_specs/) for GPUs. Each
comes with the datasheet figures of its chip that the memory and roofline report reads.

TPU v4 and v5p slices are named by TensorCores (v4-8 is 4 chips, each one megacore device),
v5e and v6e by chips. Slices follow Google's shapes: 4 chips a host, except the single-host
8-chip v5e and v6e machines.
"""

import dataclasses
import os

from amos_jax import errors


@dataclasses.dataclass(frozen=True)
class Chip:
  """One chip's memory for a step and HBM bandwidth; its peak FLOP/s come from
  train/flops.py's table."""
  generation: str  # The topology prefix libtpu takes ("v4", "v5e", "v5", "v6e"), or "h100".
  hbm_bytes: int
  hbm_bytes_per_second: float


_GIB = 1 << 30
# What JAX may take of a GPU's memory: the share launch/common.sh preallocates.
GPU_MEMORY_FRACTION = 0.90
CHIPS = {
    # Google Cloud's TPU system architecture pages.
    "v4": Chip("v4", 32 * _GIB, 1_200e9),
    "v5e": Chip("v5e", 16 * _GIB, 819e9),
    "v5p": Chip("v5", 95 * _GIB, 2_765e9),
    "v6e": Chip("v6e", 32 * _GIB, 1_640e9),
    # NVIDIA's datasheets (SXM); the memory as CUDA reports it (gpu_specs/).
    "h100": Chip("h100", int(84_942_979_072 * GPU_MEMORY_FRACTION), 3.35e12),
    "h200": Chip("h200", int(151_397_597_184 * GPU_MEMORY_FRACTION), 4.8e12),
}
_GPUS_PER_HOST = 8
_GPU_COUNTS = (1, 8, 16, 32)  # One GPU, one host, and two or four hosts of 8.

# Chips -> (topology shape, chips per host) for the 2-D tori of v5e and v6e.
_TWO_D = {1: ("1x1", (1, 1, 1)), 4: ("2x2", (2, 2, 1)), 8: ("2x4", (2, 4, 1)),
          16: ("4x4", (2, 2, 1)), 32: ("4x8", (2, 2, 1)), 64: ("8x8", (2, 2, 1)),
          128: ("8x16", (2, 2, 1)), 256: ("16x16", (2, 2, 1))}
# Chips -> topology shape for the 3-D tori of v4 and v5p (4 chips a host).
_THREE_D = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8",
            256: "4x8x8"}
# Cloud's accelerator-type prefixes -> ours.
_ALIASES = {"v5litepod": "v5e", "v6e": "v6e", "v5e": "v5e", "v4": "v4", "v5p": "v5p",
            "h100": "h100", "h200": "h200"}


@dataclasses.dataclass(frozen=True)
class Target:
  """A named slice or GPU set: its chip and how the compiler plugin is asked for devices."""
  name: str
  chip: Chip
  num_chips: int
  # libtpu's topology name ("v5e:2x4"), or the CUDA plugin's slices x hosts x GPUs ("1x2x8").
  topology: str
  platform: str = "tpu"  # "tpu" or "gpu".
  chip_config: str = "default"  # "default" (one device per chip) or "megacore" (v4, v5p).
  chips_per_host: tuple[int, int, int] = (1, 1, 1)
  wrap: tuple[bool, bool, bool] = (False, False, False)  # Torus wrap-around per dimension.


def known_names() -> list[str]:
  """Every name `target` accepts, in Google's and NVIDIA's spelling."""
  names = [f"v5e-{n}" for n in _TWO_D] + [f"v6e-{n}" for n in _TWO_D]
  names += [f"v4-{2 * n}" for n in _THREE_D] + [f"v5p-{2 * n}" for n in _THREE_D]
  names += [f"{gpu}-{n}" for gpu in ("h100", "h200") for n in _GPU_COUNTS]
  return names


def target(name: str) -> Target:
  """The Target named `name`; an InputError listing the known names otherwise."""
  prefix, _, count = name.lower().rpartition("-")
  generation = _ALIASES.get(prefix)
  if generation is None or not count.isdigit():
    raise _unknown(name)
  count = int(count)
  chip = CHIPS[generation]
  if generation in ("h100", "h200"):
    if count not in _GPU_COUNTS:
      raise _unknown(name)
    hosts = max(1, count // _GPUS_PER_HOST)
    return Target(f"{generation}-{count}", chip, count, f"1x{hosts}x{count // hosts}", "gpu")
  if generation in ("v4", "v5p"):  # Named by TensorCores, two per (megacore) chip.
    shape = _THREE_D.get(count // 2) if count % 2 == 0 else None
    if shape is None:
      raise _unknown(name)
    wrap = (True,) * 3 if min(int(d) for d in shape.split("x")) >= 4 else (False,) * 3
    return Target(f"{generation}-{count}", chip, count // 2, f"{chip.generation}:{shape}",
                  "tpu", "megacore", (2, 2, 1), wrap)
  if count not in _TWO_D:
    raise _unknown(name)
  shape, per_host = _TWO_D[count]
  wrap = tuple(int(d) >= 16 for d in shape.split("x")) + (False,)
  return Target(f"{generation}-{count}", chip, count, f"{chip.generation}:{shape}", "tpu",
                "default", per_host, wrap)


def _unknown(name: str) -> errors.InputError:
  return errors.InputError(f"--topology={name}: unknown; expected one of "
                           f"{', '.join(known_names())}.")


def compile_only_devices(slice_target: Target) -> list:
  """The target's devices, for compiling only, in id order (as jax.devices() lists them)."""
  if slice_target.platform == "gpu":
    devices = _gpu_devices(slice_target)
  else:
    devices = _tpu_devices(slice_target)
  return sorted(devices, key=lambda device: device.id)


def _tpu_devices(slice_target: Target) -> list:
  try:
    import libtpu  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise errors.InputError(
        "TPU compilation needs libtpu: pip install -r requirements-tpu.txt (or the [tpu] "
        "extra).") from e
  # Read once, when libtpu loads. Compiling claims no TPU, so other processes (test
  # workers, other checks) may load it too instead of being refused its lock file; and this
  # host is no TPU VM, so libtpu is told what it would otherwise look for in vain (and log).
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  os.environ.setdefault("TPU_ACCELERATOR_TYPE", slice_target.name)
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  return topologies.get_topology_desc(
      topology_name=slice_target.topology, platform="tpu",
      chip_config_name=slice_target.chip_config,
      chips_per_host_bounds=slice_target.chips_per_host, num_slices=1,
      wrap=slice_target.wrap).devices


def _gpu_devices(slice_target: Target) -> list:
  """The CUDA plugin's compile-only GPUs: it needs no GPU, driver or CUDA libraries, only a
  description of the card (gpu_specs/), which it would otherwise ask the driver for."""
  try:
    import jax_plugins.xla_cuda12  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError as e:
    raise errors.InputError(
        "GPU compilation needs the CUDA PJRT plugin: pip install -r "
        "requirements-gpu-compile.txt (or the [gpu-compile] extra).") from e
  spec = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu_specs",
                      f"{slice_target.chip.generation}.txtpb")
  with open(spec, encoding="utf-8") as f:
    target_config = f.read()
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  return topologies.get_topology_desc(slice_target.name, platform="cuda",
                                      target_config=target_config,
                                      topology=slice_target.topology).devices
