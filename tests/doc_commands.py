"""Test support for tests/test_docs.py: finds the `python ...` commands README.md and docs/
show, and parses each one as its module would, without running it: the module's absl flag
definitions are read from its source (ast) and defined again on a fresh FlagValues, so nothing
is imported but the configs the commands name (and amos_jax modules whose constants give an
enum flag's values).
"""

import ast
import dataclasses
import functools
import importlib
import os
import re
import shlex

from absl import flags
from ml_collections import config_flags

from amos_jax import config_validation
from tests.doc_pages import PAGES, REPO, SHELL_FENCES, code_spans, page_blocks

@dataclasses.dataclass
class Command:
  page: str
  line: int
  words: list[str]
  from_fence: bool

  def __str__(self):
    return f"{self.page}:{self.line}: {shlex.join(self.words)}"


def shell_segments(text: str) -> list[list[str]]:
  """Simple commands of a shell snippet: continuations joined, comments dropped, split at
  &&, ||, ; and |."""
  segments = []
  for line in text.replace("\\\n", " ").splitlines():
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    current = []
    for word in lexer:
      if word in ("&&", "||", ";", "|", "&"):
        segments.append(current)
        current = []
      else:
        current.append(word)
    segments.append(current)
  return [s for s in segments if s]


def python_commands() -> list[Command]:
  """Every `python ...` command of amos_jax or benchmarks in a shell code block or inline code,
  with leading VAR=value words dropped."""
  found = []
  for page in PAGES:
    for block in page_blocks(page):
      if block.kind == "code" and block.fence in SHELL_FENCES:
        snippets = [block.text]
      elif block.kind != "code":
        snippets = [s for s in code_spans(block) if re.match(r"python3? ", s)]
      else:
        continue
      for snippet in snippets:
        for words in shell_segments(snippet):
          while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
            words = words[1:]
          if len(words) < 2 or words[0] not in ("python", "python3"):
            continue
          target = words[2] if words[1] == "-m" and len(words) > 2 else words[1]
          if target.split(".")[0].split("/")[0] in ("amos_jax", "benchmarks"):
            found.append(Command(page, block.line, words, block.kind == "code"))
  return found


def module_file(words: list[str]) -> tuple[str, list[str]]:
  """(source file, arguments) of `python -m module ...` or `python path.py ...`."""
  if words[1] == "-m":
    base = os.path.join(REPO, *words[2].split("."))
    candidates, args = [base + ".py", os.path.join(base, "__main__.py")], words[3:]
  else:
    candidates, args = [os.path.join(REPO, words[1])], words[2:]
  for path in candidates:
    if os.path.isfile(path):
      return path, args
  raise AssertionError(f"no module or script {words[1:3]}")


@dataclasses.dataclass(frozen=True)
class FlagSpec:
  """The flags a module defines, read from its source."""
  defines: tuple[tuple[str, str, tuple[str, ...] | None], ...]  # (DEFINE_x, name, enum values)
  required: frozenset[str]
  debug: bool  # cli_errors.run adds --debug.


def _literal(node: ast.AST, assignments: dict[str, ast.AST], imports: dict[str, str]):
  """A literal, or a module-level name (or list()/tuple()/sorted() of one) bound to one; a
  dict gives its keys. `module.NAME` of an imported amos_jax module is read by importing it."""
  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args and (
      node.func.id in ("list", "tuple", "sorted")):
    node = node.args[0]
  if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) in imports:
    value = getattr(importlib.import_module(imports[node.value.id]), node.attr)
    return list(value)  # A dict gives its keys.
  if isinstance(node, ast.Name):
    node = assignments[node.id]
  if isinstance(node, ast.Dict):
    return [ast.literal_eval(key) for key in node.keys]
  return ast.literal_eval(node)


def _imported_modules(tree: ast.AST) -> dict[str, str]:
  """Local name -> module, for `from package import module [as name]` of amos_jax's own."""
  imports = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amos_jax"):
      for alias in node.names:
        imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
  return imports


@functools.cache
def flag_spec(path: str) -> FlagSpec:
  tree = ast.parse(open(path, encoding="utf-8").read())
  assignments = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)}
  imports = _imported_modules(tree)
  defines, required, debug = [], set(), False
  for node in ast.walk(tree):
    if not isinstance(node, ast.Call):
      continue
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    arguments = {k.arg: k.value for k in node.keywords}
    if name.startswith("DEFINE_"):
      flag_name = _literal(node.args[0] if node.args else arguments["name"], assignments,
                           imports)
      values = None
      if "enum" in name:
        values = tuple(_literal(node.args[2] if len(node.args) > 2 else
                                arguments["enum_values"], assignments, imports))
      defines.append((name, flag_name, values))
    elif name in ("mark_flag_as_required", "mark_flags_as_required"):
      named = _literal(node.args[0], assignments, imports)
      required |= {named} if isinstance(named, str) else set(named)
    elif name == "run" and isinstance(func, ast.Attribute) and getattr(
        func.value, "id", "") == "cli_errors":
      debug = True
  return FlagSpec(tuple(defines), frozenset(required), debug)


def parse_command(command: Command) -> flags.FlagValues:
  """Parses the command's arguments as its module would; raises on any unknown flag, bad
  value, missing config file or preset, unknown config key or missing required flag."""
  path, args = module_file(command.words)
  # Optional arguments shown as [--flag=value]; "..." stands for arguments left out.
  args = [a.strip("[]") for a in args if a not in ("...", "[", "]")]
  argv = [path] + args
  spec = flag_spec(path)
  values = flags.FlagValues()
  for define, name, enum_values in spec.defines:
    if define == "DEFINE_config_file":
      config_flags.DEFINE_config_file(name, None, "", flag_values=values, sys_argv=argv)
    elif enum_values is not None:
      getattr(flags, define)(name, None, enum_values, "", flag_values=values)
    else:
      getattr(flags, define)(name, None, "", flag_values=values)
  if spec.debug:
    flags.DEFINE_bool("debug", False, "", flag_values=values)
  if args:  # A bare `python -m module` in the text names the module only.
    for name in spec.required:
      flags.mark_flag_as_required(name, flag_values=values)
  rest = values(argv)
  assert rest == argv[:1], f"positional arguments {rest[1:]}"
  if "config" in values and values["config"].value is not None:
    config = values["config"].value
    if "task" not in config:  # Pretraining configs: the values too, as a run checks them.
      config_validation.validate(config, 1)
  return values
