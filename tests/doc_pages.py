"""Test support for tests/test_docs.py: the pages (README.md and docs/*.md) split into text and
code blocks, their anchors and code spans, and the repository's files they may name."""

import dataclasses
import functools
import glob
import os
import re

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
