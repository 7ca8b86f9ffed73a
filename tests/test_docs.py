"""README.md and docs/ stay true of the code: links and file references resolve, every command
shown parses against its module's flags and the configs, the README's set-up commands are
CI's, and every measured figure carries a date.

Commands are checked without running their modules: each module's absl flag definitions are
read from its source (ast) and defined again on a fresh FlagValues, so nothing is imported
but the configs the commands name.
"""

import ast
import dataclasses
import functools
import glob
import importlib
import os
import re
import shlex

from absl import flags
from ml_collections import config_flags
import pytest

from amos_jax import config_validation
from configs import glue as glue_configs
from configs import squad as squad_configs
from configs import tiny as tiny_config

# ml_collections loads config files with importlib's deprecated load_module().
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
README_MAX_LINES = 150
SHELL_FENCES = ("", "bash", "sh", "shell", "console")
# Top-level folders of the repository: a code span or command word starting with one of them
# names a file or folder of the checkout.
REPO_PATH = re.compile(r"^(?:amos_jax|configs|benchmarks|launch|tests|notebooks|docs)/[\w./-]*$")
DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
# A measured figure: a rate, a duration, an MFU, or an accuracy-like fraction (0.824).
MEASURED_VALUE = re.compile(
    r"\d[\d,.]*\s?[kMG]?\s?(?:tokens/s|sentences/s|MB/s)|\d\s?(?:s|ms|minutes|hours)\b"
    r"|\d%\s?MFU|\b0\.\d{3}\b")
# A table whose header names a measured quantity is a results table: every row needs a date.
MEASURED_HEADER = re.compile(
    r"tokens/s|\bMFU\b|accuracy|\bacc\b|\bAUC\b|SST-2|AG News|\bstep\b|minutes|figure|measured",
    re.IGNORECASE)
# How the work was organised is no reader's business; dates and commits are.
FORBIDDEN = re.compile(r"\bsessions?\b|\bstops? \d+|\bissues? \d+|\bwe were asked\b",
                       re.IGNORECASE)


@dataclasses.dataclass
class Block:
  """A paragraph, a table or a fenced code block of a page."""
  kind: str  # "prose", "table" or "code".
  line: int  # 1-based line of its start.
  lines: list[str]
  fence: str = ""  # The code block's language.
  heading: str = ""  # The nearest heading above it.

  @property
  def text(self) -> str:
    return "\n".join(self.lines)


@functools.cache
def page_blocks(page: str) -> tuple[Block, ...]:
  """The page split into code blocks, tables and paragraphs (headings kept as paragraphs)."""
  with open(os.path.join(REPO, page), encoding="utf-8") as file:
    lines = file.read().splitlines()
  blocks, current, heading, fence = [], None, "", None
  for number, line in enumerate(lines, 1):
    if fence is not None:
      if line.strip() == "```":
        blocks.append(current)
        current, fence = None, None
      else:
        current.lines.append(line)
      continue
    opening = re.match(r"^```([\w-]*)\s*$", line)
    kind = "table" if line.startswith("|") else "prose"
    if opening or not line.strip() or line.startswith("#") or (current and current.kind != kind):
      if current:
        blocks.append(current)
      current = None
    if opening:
      fence = opening.group(1)
      current = Block("code", number, [], fence=fence, heading=heading)
    elif line.startswith("#"):
      heading = line
      blocks.append(Block("prose", number, [line], heading=heading))
    elif line.strip():
      current = current or Block(kind, number, [], heading=heading)
      current.lines.append(line)
  assert fence is None, f"{page}: a code fence is not closed"
  if current:
    blocks.append(current)
  return tuple(blocks)


def code_spans(block: Block) -> list[str]:
  """The inline code of a paragraph or table (a span may wrap onto the next line)."""
  return re.findall(r"`([^`]+)`", " ".join(block.lines))


def without_code(text: str) -> str:
  return re.sub(r"`[^`]*`", "", text)


def slug(heading: str) -> str:
  """GitHub's anchor for a heading."""
  text = heading.lstrip("#").strip().lower()
  return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: str) -> set[str]:
  found, seen = set(), {}
  for block in page_blocks(page):
    if block.kind == "prose" and block.lines[0].startswith("#"):
      name = slug(block.lines[0])
      found.add(name if name not in seen else f"{name}-{seen[name]}")
      seen[name] = seen.get(name, 0) + 1
  return found


@functools.cache
def repo_files() -> frozenset[str]:
  """Relative paths of the checkout's files and folders (not .git, not virtual envs)."""
  found = set()
  for root, dirs, files in os.walk(REPO):
    dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
    for name in dirs + files:
      found.add(os.path.relpath(os.path.join(root, name), REPO))
  return frozenset(found)


def names_a_file(reference: str) -> bool:
  """Whether a path written in the docs exists: from the repository root, from amos_jax/, or
  (a bare file name) anywhere in the checkout."""
  path = reference.split("::")[0].rstrip("/")
  path = re.sub(r":[\w.]+$", "", path)  # configs/small.py:electra
  files = repo_files()
  if path in files or os.path.join("amos_jax", path) in files:
    return True
  return "/" not in path and any(os.path.basename(f) == path for f in files)


# ---------------------------------------------------------------- (1) links and file names


def test_every_link_and_image_resolves():
  broken = []
  for page in PAGES:
    for block in page_blocks(page):
      if block.kind == "code":
        continue
      for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", without_code(block.text)):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
          continue
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(os.path.join(REPO, resolved)):
          broken.append(f"{page}:{block.line}: {target} (no {resolved})")
        elif anchor and anchor not in anchors(resolved):
          broken.append(f"{page}:{block.line}: {target} (no heading #{anchor} in {resolved})")
  assert not broken, "\n".join(broken)


def test_every_file_named_in_code_exists():
  """Inline code such as `amos_jax/objective.py` or `models/span.py`, and repository paths in
  the commands shown, name files of the checkout."""
  missing = []
  for page in PAGES:
    for block in page_blocks(page):
      if block.kind == "code":
        if block.fence not in SHELL_FENCES:
          continue
        words = [w for line in block.lines for w in line.split()]
      else:
        words = []
        for span in code_spans(block):
          if re.fullmatch(r"[\w./-]+\.(py|sh|sbatch|ipynb)(:[\w.]+)?|" + REPO_PATH.pattern, span):
            words.append(span)
          else:
            words += span.split()
      for word in words:
        word = word.strip("'\"[](),;").split("=", 1)[-1]
        path = re.sub(r"(:[\w.]+|::\w+)$", "", word)  # configs/small.py:electra
        looks_like_file = not path.startswith(("/", ".", "~")) and (
            re.fullmatch(r"[\w./-]+\.(py|sh|sbatch|ipynb)", path) or REPO_PATH.match(path))
        if looks_like_file and not names_a_file(word):
          missing.append(f"{page}:{block.line}: {word}")
  assert not missing, "\n".join(missing)


# ---------------------------------------------------------------- (2) commands parse


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


def test_commands_are_found():
  """The collection itself: the pages show commands of every module the map names."""
  shown = {c.words[2] if c.words[1] == "-m" else c.words[1] for c in python_commands()}
  assert {"amos_jax.main", "amos_jax.export", "amos_jax.plots", "amos_jax.squad.evaluate",
          "benchmarks/train_step.py", "benchmarks/quality.py"} <= shown


def test_every_command_shown_parses(monkeypatch):
  monkeypatch.chdir(REPO)  # Config paths in the docs are relative to the repository root.
  failures = []
  for command in python_commands():
    try:
      parse_command(command)
    except Exception as error:  # pylint: disable=broad-except
      failures.append(f"{command}\n    {type(error).__name__}: {str(error).splitlines()[0]}")
  assert not failures, "\n".join(failures)


def test_every_config_key_named_in_the_text_exists():
  """`--config.a.b=...` in running text is a key of a pretraining, GLUE or SQuAD config."""
  keys = set()
  for config in (tiny_config.get_config(), glue_configs.get_config("sst2"),
                 squad_configs.get_config()):
    keys |= config_validation.flat_keys(config)
  unknown = []
  for page in PAGES:
    for block in page_blocks(page):
      if block.kind == "code":
        continue
      for span in code_spans(block):
        for key in re.findall(r"--config\.([\w.]+)", span):
          if key not in keys:
            unknown.append(f"{page}:{block.line}: --config.{key}")
  assert not unknown, "\n".join(unknown)


# ---------------------------------------------------------------- (3) the README's set-up


def setup_commands() -> list[str]:
  """The code blocks of the README's "Set up" section."""
  blocks = page_blocks("README.md")
  return [b.text.strip() for b in blocks
          if b.kind == "code" and b.heading.strip() == "## Set up"]


def test_readme_test_command_is_the_one_ci_runs():
  with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as file:
    ci = [line.strip() for line in file if line.strip().startswith("python -m pytest")]
  install, test = setup_commands()
  assert ci == [test]


def test_readme_install_command_installs_the_pins_and_runs_the_quickstart():
  install, _ = setup_commands()
  segments = shell_segments(install)
  assert ["pip", "install", "-r", "requirements.txt"] in segments
  with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as file:
    assert "-r requirements.txt" in file.read()  # The same pins as CI's.
  quickstart = segments[-1]
  assert quickstart[:3] == ["python", "-m", "amos_jax.main"]
  assert "--config=configs/tiny.py" in quickstart


# ---------------------------------------------------------------- (4) a short front page


def test_readme_is_a_front_page():
  with open(os.path.join(REPO, "README.md"), encoding="utf-8") as file:
    lines = file.read().splitlines()
  assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


# ---------------------------------------------------------------- (5) figures carry dates


def test_every_measured_figure_carries_a_date():
  """Rows of results tables (a header naming a measured quantity), table rows holding a
  measured value, and paragraphs holding one (or their section's heading) name a date."""
  undated = []
  for page in PAGES:
    for block in page_blocks(page):
      if block.kind == "table":
        results_table = MEASURED_HEADER.search(without_code(block.lines[0]))
        for offset, row in enumerate(block.lines[2:], 2):
          if (results_table or MEASURED_VALUE.search(without_code(row))) and not DATE.search(row):
            undated.append(f"{page}:{block.line + offset}: {row[:90]}")
      elif block.kind == "prose" and MEASURED_VALUE.search(without_code(block.text)):
        if not DATE.search(block.text) and not DATE.search(block.heading):
          undated.append(f"{page}:{block.line}: {block.lines[0][:90]}")
  assert not undated, "\n".join(undated)


def test_no_text_tells_how_the_work_was_organised():
  found = []
  for page in PAGES:
    with open(os.path.join(REPO, page), encoding="utf-8") as file:
      for number, line in enumerate(file, 1):
        if FORBIDDEN.search(line):
          found.append(f"{page}:{number}: {line.strip()}")
  assert not found, "\n".join(found)
