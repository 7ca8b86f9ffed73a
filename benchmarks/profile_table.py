"""Per-op device time from a jax.profiler trace, summed into benchmarks/hlo_categories.py's rows."""

import collections

from benchmarks import hlo_categories


def op_times_ns(profile, module_name: str, platform: str):
  """({HLO instruction name: total ns}, where the times came from, devices) for one module.

  On GPU/TPU each device plane has an "XLA Ops" line with one event per executed op. XLA:CPU
  has no device plane: its thunk executor records each op as an event on the host's worker
  thread lines, with the same `hlo_op`/`hlo_module` stats.
  """
  def collect(lines, ops_only: bool):
    times = collections.Counter()
    for line in lines:
      for event in line.events:
        stats = dict(event.stats)
        # Host threads also carry the runtime's own events ("ThunkExecutor::Execute"): only
        # those naming an HLO op count there.
        if (ops_only and "hlo_op" not in stats) or stats.get("hlo_module",
                                                             module_name) != module_name:
          continue
        name = str(stats.get("hlo_op", event.name)).lstrip("%").split(" ")[0]
        times[name] += event.duration_ns
    return times

  device_planes = [p for p in profile.planes if p.name.startswith("/device:")]
  ops_lines = [(p, l) for p in device_planes for l in p.lines if l.name == "XLA Ops"]
  times = collect((l for _, l in ops_lines), ops_only=False)
  if times:
    devices = len({p.name for p, _ in ops_lines})
    return times, f"'XLA Ops' lines of {devices} device plane(s)", devices
  host_lines = [l for p in profile.planes if p.name.startswith("/host:") for l in p.lines]
  if platform == "cpu":
    source = ("host thread events of XLA:CPU's thunks (no device plane; ops on different "
              "threads overlap)")
  else:
    source = (f"host thread events only: the trace has no {platform} device plane (is the "
              "device tracer, e.g. CUPTI, missing?), so these are host-side times")
  return collect(host_lines, ops_only=True), source, 1


def vocab_size_is_ambiguous(config, device_count: int, micro_batches: int) -> bool:
  """Whether a non-vocabulary dimension of the step equals vocab_size (base: 64 x 512)."""
  rows = config.batch_size // device_count
  others = {config.seq_len, config.model.hidden_size, config.model.ffn_size,
            rows * config.seq_len, rows // micro_batches * config.seq_len}
  return config.model.vocab_size in others


def summarise(times_ns, module, vocab_size: int, vocab_size_is_ambiguous: bool):
  """(rows: {category: (ns, matmul ns)}, ops: [(ns, name, category)] longest first, unmatched ns).

  Container ops (while, conditional) are left out: their children are profiled on their own.
  """
  rows = {c: [0, 0] for c in hlo_categories.CATEGORIES}
  ops, unmatched = [], 0
  for name, ns in times_ns.items():
    instruction = module.instructions.get(name)
    if instruction is None:
      unmatched += ns
      continue
    if instruction.opcode in hlo_categories.CONTAINER_OPCODES:
      continue
    category = hlo_categories.categorise(module, name, vocab_size, vocab_size_is_ambiguous)
    rows[category][0] += ns
    if hlo_categories.is_matmul(module, name):
      rows[category][1] += ns
    ops.append((ns, name, category))
  rows["other"][0] += unmatched
  return {c: tuple(v) for c, v in rows.items()}, sorted(ops, reverse=True), unmatched


def format_table(rows, per_step_divisor: float, step_ns: float) -> str:
  """The category table: ms per step, % of profiled op time, % of the wall-clock step."""
  total = sum(ns for ns, _ in rows.values()) or 1
  ms = lambda ns: ns / per_step_divisor / 1e6
  lines = [f"{'category':<12} {'ms/step':>10} {'% ops':>7} {'% step':>7} {'matmul ms':>10}"]
  for category, (ns, matmul_ns) in rows.items():
    lines.append(f"{category:<12} {ms(ns):>10.3f} {ns / total:>7.1%} "
                 f"{ns / per_step_divisor / step_ns:>7.1%} {ms(matmul_ns):>10.3f}")
  matmul_total = sum(m for _, m in rows.values())
  lines.append(f"{'total':<12} {ms(total):>10.3f} {1:>7.1%} "
               f"{total / per_step_divisor / step_ns:>7.1%} {ms(matmul_total):>10.3f}")
  return "\n".join(lines)


def format_top(ops, module, total_ns: float, per_step_divisor: float, count: int) -> str:
  lines = [f"{'ms/step':>9} {'% ops':>6}  {'category':<11} {'op':<28} {'opcode':<14} op_name"]
  for ns, name, category in ops[:count]:
    instruction = module.instructions[name]
    opcode = instruction.custom_call_target or instruction.fusion_kind or instruction.opcode
    op_name = hlo_categories.scope(module, instruction) or "(no op_name)"
    lines.append(f"{ns / per_step_divisor / 1e6:>9.3f} {ns / total_ns:>6.1%}  {category:<11} "
                 f"{name[:28]:<28} {opcode[:14]:<14} {op_name[-110:]}")
  return "\n".join(lines)
