"""README.md and docs/ stay true of the code: links and file references resolve, every command
shown parses against its module's flags and the configs, the README's set-up commands are
CI's, and every measured figure carries a date.

Commands are checked without running their modules (tests/doc_commands.py); the pages'
parsing is tests/doc_pages.py.
"""

import os
import re

import pytest

from amos_jax import config_validation
from configs import glue as glue_configs
from configs import squad as squad_configs
from configs import tiny as tiny_config
from tests.doc_commands import parse_command, python_commands, shell_segments
from tests.doc_pages import (DATE, FORBIDDEN, MEASURED_HEADER, MEASURED_VALUE, PAGES,
                             README_MAX_LINES, REPO, REPO_PATH, SHELL_FENCES, anchors,
                             code_spans, names_a_file, page_blocks, without_code)

# ml_collections loads config files with importlib's deprecated load_module().
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")


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
