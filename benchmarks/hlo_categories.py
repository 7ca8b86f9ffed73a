"""Reads a compiled HLO module's text and puts each instruction in a cost category.

The profiler names each executed op after its HLO instruction ("fusion.12"); this module maps
that name back to the instruction (opcode, shapes, the instructions fused into it, JAX's name
stack in `op_name`, the innermost Python frame in `stack_frame_id`) and decides which part of the
AMOS train step the op's time belongs to. benchmarks/profile_step.py prints the result.
"""

import collections
import dataclasses
import re

# Table order. "attention", "vocabulary" and "optimizer" are parts of the model or step;
# "matmul" holds the matrix products outside attention and the vocabulary-sized heads.
CATEGORIES = ("matmul", "attention", "vocabulary", "elementwise", "rng", "optimizer",
              "collectives", "other")

# Ops that only run other computations: their time is their children's, profiled on their own.
CONTAINER_OPCODES = frozenset({"while", "conditional", "call"})
COLLECTIVE_OPCODES = frozenset({
    "all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute",
    "collective-broadcast", "send", "recv", "ragged-all-to-all"})
MATMUL_OPCODES = frozenset({"dot", "convolution", "ragged-dot"})
# cuBLAS/cuBLASLt gemms and oneDNN/XNNPACK matmuls arrive as custom calls or custom fusions.
MATMUL_TARGET = re.compile(r"gemm|matmul|conv", re.IGNORECASE)
FUSED_ATTENTION_TARGET = re.compile(r"fmha|flash|attention", re.IGNORECASE)
# Op-name fragments of random-bit generation (threefry rounds and key splits, jax.random's bits,
# XLA's RngBitGenerator). Turning bits into uniforms and masks is cheap elementwise work and is
# left to the op's scope, so a dropout fused into a LayerNorm is not counted as RNG.
RNG_NAME = re.compile(r"threefry|random_bits|rng_bit_generator|iota_2x32_shape")
RNG_OPCODES = frozenset({"rng-bit-generator", "rng", "rng-get-and-update-state"})
# ThreeFry's rounds (rotations and xors of uint32 words): jax.random's threefry2x32 lowers to
# them without its name on the op, so its hashing is found by these opcodes together.
THREEFRY_ROUND_OPCODES = frozenset({"xor", "shift-left", "shift-right-logical"})
ATTENTION_SCOPE = re.compile(r"(^|/)attention(/|$)")
# The MLM heads (tied logits over the vocabulary) under their flax scope and method name.
VOCABULARY_SCOPE = re.compile(r"(^|/)mlm_head(/|$)|mlm_logits")
# Python functions of the objective whose work is [.., V]: tied logits, softmax/cross-entropy,
# the Gumbel sample (its random bits included) and the embedding of the sampled tokens.
VOCABULARY_FUNCTIONS = re.compile(
    r"^(_?tied_output|_?embed_sampled|_cross_entropy|_target_logit|_target_is_top|"
    r"straight_through_gumbel|_gumbel_|gumbel_noise|_random_bits)")
# Arithmetic that makes a fusion elementwise/normalisation work rather than data movement.
ARITHMETIC_OPCODES = frozenset({
    "add", "subtract", "multiply", "divide", "maximum", "minimum", "power", "remainder",
    "exponential", "exponential-minus-one", "log", "log-plus-one", "logistic", "tanh", "erf",
    "sqrt", "rsqrt", "cbrt", "negate", "abs", "sign", "select", "compare", "convert", "reduce",
    "reduce-precision", "clamp", "and", "or", "xor", "not", "floor", "ceil",
    "round-nearest-even", "round-nearest-afz", "is-finite", "atan2", "sine", "cosine",
    "shift-left", "shift-right-logical", "shift-right-arithmetic", "popcnt", "count-leading-zeros"})

_PARTIAL_READS = frozenset({"fusion", "gather", "dynamic-slice", "parameter"})
# A fusion's parameters and reshapes: flattening makes sizes that are no dimension of the model
# (tiny's 64 x 64 relative-bias table reshaped to 4096 rows, its vocab_size).
_RESHAPES = frozenset({"parameter", "bitcast", "reshape"})

_HEADER = re.compile(r"^(?:ENTRY\s+)?%?(?P<name>[^\s(]+)\s+\(.*\)\s+->\s+.*\{\s*$")
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT\s+)?%?(?P<name>[^\s=]+)\s*=\s*(?P<shape>.*?)\s(?P<opcode>[a-z][\w\-]*)\("
    r"(?P<rest>.*)$")
_CALLS = re.compile(r"\bcalls=%?([^\s,}]+)")
_TARGET = re.compile(r'custom_call_target="([^"]*)"')
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_FRAME = re.compile(r"stack_frame_id=(\d+)")
_KIND = re.compile(r"\bkind=(\w+)")
_OPERAND = re.compile(r"%([^\s,)]+)")
_DIMS = re.compile(r"\b[a-z]+\d*\[([\d,]*)\]")
_SECTIONS = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")


@dataclasses.dataclass
class Instruction:
  name: str
  opcode: str
  dims: tuple  # The result shape's dimension sizes (all of them, for a tuple).
  operands: tuple  # Operand instruction names.
  op_name: str
  frame_id: int  # 0 when the instruction carries no Python stack.
  calls: str | None  # The computation a fusion (or async op) runs.
  fusion_kind: str | None
  custom_call_target: str | None


@dataclasses.dataclass
class HloModule:
  instructions: dict  # name -> Instruction, over all computations.
  computations: dict  # name -> [instruction names]
  frames: dict  # stack frame id -> (file name, function name) of the innermost Python frame

  def contents(self, instruction: Instruction) -> list:
    """The instruction and, for a fusion or async op, every instruction it runs (recursively)."""
    found, pending = [instruction], [instruction.calls] if instruction.calls else []
    seen = set()
    while pending:
      computation = pending.pop()
      if computation in seen or computation not in self.computations:
        continue
      seen.add(computation)
      for name in self.computations[computation]:
        inner = self.instructions[name]
        found.append(inner)
        if inner.calls:
          pending.append(inner.calls)
    return found

  def dims(self, instruction: Instruction) -> set:
    """Dimension sizes of the instruction's result and of the operands it reads in full.

    Not a fusion's operands (its fused instructions show what it reads) nor the table a
    gather picks rows from: an embedding lookup reads B x L rows, not the vocabulary.
    """
    sizes = set(instruction.dims)
    if instruction.opcode not in _PARTIAL_READS:
      for operand in instruction.operands:
        if operand in self.instructions:
          sizes.update(self.instructions[operand].dims)
    return sizes


def _parse_sections(lines):
  """The module's Python stack tables: {section: {id: text after the id}}."""
  tables, current = {s: {} for s in _SECTIONS}, None
  for line in lines:
    stripped = line.strip()
    if stripped in _SECTIONS:
      current = stripped
      continue
    match = re.match(r"^(\d+)\s+(.*)$", stripped) if current else None
    if match:
      tables[current][int(match.group(1))] = match.group(2)
    elif current and stripped:
      current = None
  return tables


def _frames(tables):
  field = lambda text, key: int(re.search(key + r"=(\d+)", text).group(1))
  files = {i: t.strip('"') for i, t in tables["FileNames"].items()}
  functions = {i: t.strip('"') for i, t in tables["FunctionNames"].items()}
  locations = {i: (files.get(field(t, "file_name_id"), ""),
                   functions.get(field(t, "function_name_id"), ""))
               for i, t in tables["FileLocations"].items()}
  # Only each frame's own location is read: the innermost user frame says which library or
  # objective function emitted the op, which is all the categories need.
  return {frame_id: locations.get(field(text, "file_location_id"), ("", ""))
          for frame_id, text in tables["StackFrames"].items()}


def parse_module(text: str) -> HloModule:
  """Parses `compiled.as_text()` (or any HLO module text) into instructions and frames."""
  lines = text.splitlines()
  instructions, computations, current = {}, {}, None
  for line in lines:
    header = _HEADER.match(line)
    if header and not _INSTRUCTION.match(line):
      current = header.group("name")
      computations[current] = []
      continue
    match = _INSTRUCTION.match(line)
    if not match or current is None:
      continue
    rest = match.group("rest")
    dims = tuple(int(d) for group in _DIMS.findall(match.group("shape"))
                 for d in group.split(",") if d)
    operands = tuple(_OPERAND.findall(rest.split(")")[0]))
    find = lambda pattern: (lambda m: m.group(1) if m else None)(pattern.search(rest))
    instruction = Instruction(
        name=match.group("name"), opcode=match.group("opcode"), dims=dims, operands=operands,
        op_name=find(_OP_NAME) or "", frame_id=int(find(_FRAME) or 0),
        calls=find(_CALLS),
        fusion_kind=find(_KIND), custom_call_target=find(_TARGET))
    instructions[instruction.name] = instruction
    computations[current].append(instruction.name)
  return HloModule(instructions, computations, _frames(_parse_sections(lines)))


def _most_common(values):
  values = [v for v in values if v]
  return collections.Counter(values).most_common(1)[0][0] if values else ""


def _is_optimizer_file(file_name: str) -> bool:
  file_name = file_name.replace("\\", "/")
  return (("/optax/" in file_name and "/optax/losses/" not in file_name)
          or file_name.endswith("train/optimizer.py"))


def categorise(module: HloModule, name: str, vocab_size: int,
               vocab_size_is_ambiguous: bool = False) -> str:
  """The category (one of CATEGORIES) of the instruction called `name` in `module`.

  vocab_size_is_ambiguous: another dimension of the step equals vocab_size (e.g. base's
  64 x 512 tokens = 32768), so shapes alone do not show vocabulary-sized work; only the name
  scope and the Python functions do.
  """
  instruction = module.instructions[name]
  contents = module.contents(instruction)
  opcodes = {i.opcode.removesuffix("-start").removesuffix("-done") for i in contents}
  targets = [i.custom_call_target for i in contents if i.custom_call_target]
  op_name = scope(module, instruction)
  frames = [module.frames[i.frame_id] for i in contents if i.frame_id in module.frames]
  innermost_file = _most_common(file_name for file_name, _ in frames)
  functions = {function for _, function in frames}

  if opcodes & COLLECTIVE_OPCODES:
    return "collectives"
  if any(FUSED_ATTENTION_TARGET.search(t) for t in targets):
    return "attention"
  is_matmul = _has_matmul(contents)
  is_vocabulary = bool(
      VOCABULARY_SCOPE.search(op_name)
      or any(VOCABULARY_FUNCTIONS.match(f) for f in functions)
      or (not vocab_size_is_ambiguous and any(vocab_size in module.dims(i) for i in contents
                                           if i.opcode not in _RESHAPES)))
  if not is_matmul and (opcodes & RNG_OPCODES or THREEFRY_ROUND_OPCODES <= opcodes
                        or any(RNG_NAME.search(i.op_name) for i in contents)):
    # The Gumbel noise's bits are part of the vocabulary-sized sample; the rest (dropout
    # masks, token masking, keys) is the RNG row.
    return "vocabulary" if is_vocabulary else "rng"
  if _is_optimizer_file(innermost_file):
    return "optimizer"
  if ATTENTION_SCOPE.search(op_name):
    return "attention"
  if is_vocabulary:
    return "vocabulary"
  if is_matmul:
    return "matmul"
  if opcodes & ARITHMETIC_OPCODES:
    return "elementwise"
  return "other"


def scope(module: HloModule, instruction: Instruction) -> str:
  """JAX's name stack for the op: its own, else the most common among the ops fused into it."""
  return instruction.op_name or _most_common(i.op_name for i in module.contents(instruction))


def _has_matmul(contents) -> bool:
  return any(i.opcode in MATMUL_OPCODES or (
      i.custom_call_target and MATMUL_TARGET.search(i.custom_call_target)
      and not FUSED_ATTENTION_TARGET.search(i.custom_call_target)) for i in contents)


def is_matmul(module: HloModule, name: str) -> bool:
  """Whether the op is (or fuses) a matrix product, whatever category holds its time."""
  return _has_matmul(module.contents(module.instructions[name]))
