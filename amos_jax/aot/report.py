"""What a compiled step tells before it runs: memory per chip, FLOPs, and a roofline ceiling.

Memory is XLA's own accounting of the compiled program per device (`memory_analysis`):
arguments (parameters and optimizer state; the batch), outputs, the part of the outputs that
reuses donated arguments (the new state overwrites the old), temporaries (activations,
gradients, collective buffers) and generated code. What the chip must hold is arguments +
outputs - aliased + temporaries + code, against its datasheet HBM.

FLOPs and bytes are XLA's cost analysis of the per-device program. The roofline lower bound
on the step time is the larger of FLOPs / peak FLOP/s and bytes / HBM bandwidth; the model
FLOPs (train/flops.py) done in that time bound the MFU any implementation of this program can
reach on the chip. A step that cannot fit fails to compile on TPUs; its report keeps the
compiler's figures instead.
"""

import dataclasses
import re

from amos_jax.train import flops as flops_lib

_GIB = 1 << 30


@dataclasses.dataclass(frozen=True)
class Report:
  """One compile of one step for one slice."""
  target: str
  device_kind: str
  num_devices: int
  num_hosts: int
  global_batch: int
  seq_len: int
  micro_batches: int
  compile_seconds: float
  hbm_bytes: int  # Per chip, datasheet.
  fits: bool
  # XLA's memory analysis (bytes per device); None where the compile failed.
  argument_bytes: int | None = None
  output_bytes: int | None = None
  alias_bytes: int | None = None
  temp_bytes: int | None = None
  code_bytes: int | None = None
  compiled_flops: float | None = None  # Per device per step.
  bytes_accessed: float | None = None
  model_flops: float | None = None  # train/flops.py's count, per device per step.
  peak_flops: float | None = None
  hbm_bytes_per_second: float | None = None
  compiler_message: str = ""  # The compiler's words when it refused the program.
  # From that message, where it says: mostly the temporaries alone ("the total memory
  # required for HLO temporaries (29.73G) exceeds available HBM (15.75G)"), sometimes all
  # the program used ("Used 15.86G of 15.75G hbm").
  required_bytes: int | None = None
  # Per device per step, FLOPs the cost analysis cannot see (cuDNN's fused attention, from
  # train/flops.py's count); the roofline's compute term adds them.
  uncounted_flops: float = 0.0

  @property
  def rows_per_device(self) -> int:
    return self.global_batch // self.num_devices

  @property
  def total_bytes(self) -> int | None:
    """What the device holds while the step runs; None when the compiler refused it."""
    if self.argument_bytes is None:
      return None
    return (self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes
            + self.code_bytes)

  @property
  def roofline_seconds(self) -> float | None:
    if self.compiled_flops is None or not self.peak_flops:
      return None
    return max((self.compiled_flops + self.uncounted_flops) / self.peak_flops,
               self.bytes_accessed / self.hbm_bytes_per_second)

  @property
  def mfu_ceiling(self) -> float | None:
    """Model FLOPs over what the chip's peak does in the roofline time."""
    seconds = self.roofline_seconds
    return None if seconds is None else self.model_flops / (self.peak_flops * seconds)

  def as_record(self) -> dict:
    """For JSON: the fields and the derived figures."""
    return {**dataclasses.asdict(self), "total_bytes": self.total_bytes,
            "roofline_seconds": self.roofline_seconds, "mfu_ceiling": self.mfu_ceiling}

  @classmethod
  def from_record(cls, record: dict) -> "Report":
    """The report `as_record` wrote (its derived figures are computed again)."""
    return cls(**{field.name: record[field.name] for field in dataclasses.fields(cls)
                  if field.name in record})


def from_compiled(compiled, *, target, chip, program, devices, compile_seconds) -> Report:
  memory = compiled.memory_analysis()
  cost = _cost_analysis(compiled)
  tokens_per_device = program.global_batch * program.seq_len / len(devices)
  # XLA counts a loop's body once: with accumulation the micro-batch loop holds nearly all
  # the work, so the step's figures are the count times the micro-batches (which also
  # repeats the once-per-step update, some 20 FLOPs per parameter, micro_batches - 1 times).
  loop_repeats = program.micro_batches
  report = dataclasses.replace(
      _base(target, chip, program, devices, compile_seconds, fits=True),
      argument_bytes=memory.argument_size_in_bytes, output_bytes=memory.output_size_in_bytes,
      alias_bytes=memory.alias_size_in_bytes, temp_bytes=memory.temp_size_in_bytes,
      code_bytes=memory.generated_code_size_in_bytes,
      compiled_flops=float(cost.get("flops", 0.0)) * loop_repeats,
      bytes_accessed=float(cost.get("bytes accessed", 0.0)) * loop_repeats,
      model_flops=program.model_flops_per_token * tokens_per_device,
      uncounted_flops=program.fused_attention_flops_per_token * tokens_per_device)
  return dataclasses.replace(report, fits=report.total_bytes <= report.hbm_bytes)


def _cost_analysis(compiled) -> dict:
  """XLA's per-device FLOPs and bytes of the compiled program.

  The CUDA plugin does not implement cost analysis for its executables, so for GPUs XLA's
  HLO cost analysis runs on the compiled (GPU-optimised) module through the CPU client, a
  private but stable part of jaxlib 0.10. It cannot see into library calls: cuDNN
  attention's FLOPs are missing from that count.
  """
  cost = compiled.cost_analysis()
  if cost is None:
    import jax  # pylint: disable=g-import-not-at-top
    from jax._src.lib import _jax  # pylint: disable=g-import-not-at-top
    module = compiled.runtime_executable().hlo_modules()[0]
    cost = _jax.hlo_module_cost_analysis(jax.devices("cpu")[0].client, module)
  return cost[0] if isinstance(cost, (list, tuple)) else cost


def from_out_of_memory(error: Exception, *, target, chip, program, devices,
                       compile_seconds) -> Report:
  """The report of a program the compiler refused for want of memory."""
  message = " ".join(str(error).split())
  return dataclasses.replace(
      _base(target, chip, program, devices, compile_seconds, fits=False),
      compiler_message=message[:400], required_bytes=_required_bytes(message))


def is_out_of_memory(error: Exception) -> bool:
  text = str(error)
  return "RESOURCE_EXHAUSTED" in text or "Ran out of memory" in text


def _base(target, chip, program, devices, compile_seconds, fits) -> Report:
  return Report(
      target=target, device_kind=devices[0].device_kind, num_devices=len(devices),
      num_hosts=len({device.process_index for device in devices}),
      global_batch=program.global_batch, seq_len=program.seq_len,
      micro_batches=program.micro_batches, compile_seconds=compile_seconds,
      hbm_bytes=chip.hbm_bytes, fits=fits,
      peak_flops=flops_lib.datasheet_peak_flops(devices[0].device_kind, program.compute_dtype),
      hbm_bytes_per_second=chip.hbm_bytes_per_second)


_SIZE = re.compile(r"([0-9.]+)\s*([KMGT])i?B?\b")
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _required_bytes(message: str) -> int | None:
  """The bytes the compiler said the program needs ("... required for HLO temporaries
  (29.73G) exceeds ...", "Used 20.1G of 15.75G hbm")."""
  for pattern in (r"required[^(]*\(([0-9.]+[KMGT])", r"Used ([0-9.]+[KMGT])"):
    match = re.search(pattern, message)
    if match:
      size = _SIZE.match(match.group(1))
      return int(float(size.group(1)) * _UNITS[size.group(2)])
  return None


def _gib(value) -> str:
  return "-" if value is None else f"{value / _GIB:.2f}"


def table(reports: list[Report]) -> str:
  """A Markdown table, one row per compile."""
  header = ("| target | batch (rows/chip x micro-batches) | arguments GiB | temporaries GiB | "
            "outputs - aliased GiB | code GiB | total / HBM GiB | fits | compiled TFLOP/chip "
            "| model TFLOP/chip | roofline ms | MFU ceiling | compile s |")
  lines = [header, "|" + " --- |" * (header.count("|") - 1)]
  for r in reports:
    micro = r.rows_per_device // r.micro_batches
    outputs = (None if r.output_bytes is None else r.output_bytes - r.alias_bytes)
    total = f"{_gib(r.total_bytes)} / {_gib(r.hbm_bytes)}"
    if r.total_bytes is None and r.required_bytes is not None:
      total = f"temporaries {_gib(r.required_bytes)} / {_gib(r.hbm_bytes)}"
    lines.append(
        f"| {r.target} ({r.num_hosts} host{'s' if r.num_hosts > 1 else ''}) "
        f"| {r.global_batch} x {r.seq_len} ({micro} x {r.micro_batches}) "
        f"| {_gib(r.argument_bytes)} | {_gib(r.temp_bytes)} | {_gib(outputs)} "
        f"| {_gib(r.code_bytes)} | {total} | {'FITS' if r.fits else 'DOES NOT FIT'} "
        f"| {_tera(r.compiled_flops)} | {_tera(r.model_flops)} "
        f"| {_milli(r.roofline_seconds)} | {_percent(r.mfu_ceiling)} "
        f"| {r.compile_seconds:.0f} |")
  return "\n".join(lines)


def _tera(value) -> str:
  return "-" if value is None else f"{value / 1e12:.3g}"


def _milli(value) -> str:
  return "-" if value is None else f"{value * 1e3:.1f}"


def _percent(value) -> str:
  return "-" if value is None else f"{value:.1%}"
