"""The formats layer: format detection, and that it imports nothing above it."""

import ast
import os

import pytest

from amos_jax import errors
from amos_jax.formats import flax_export
from amos_jax.formats import registry
from tests import export_helpers

FORMATS_DIR = os.path.join(os.path.dirname(__file__), os.pardir, "amos_jax", "formats")
# Packages that use checkpoints; the formats layer must not depend on them.
ABOVE = ("amos_jax.finetune", "amos_jax.glue", "amos_jax.squad", "amos_jax.inference",
         "amos_jax.export", "amos_jax.main")


def imported_modules(path: str) -> set[str]:
  """Every module a file imports, at its top or inside functions."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), path)
  modules = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      modules.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      modules.add(node.module)
      modules.update(f"{node.module}.{alias.name}" for alias in node.names)
  return modules


def formats_files():
  for root, _, names in os.walk(FORMATS_DIR):
    for name in names:
      if name.endswith(".py"):
        yield os.path.join(root, name)


def test_imported_modules_sees_imports_inside_functions(tmp_path):
  path = tmp_path / "m.py"
  path.write_text("import os\ndef f():\n  from amos_jax.glue import tasks\n")
  assert {"os", "amos_jax.glue", "amos_jax.glue.tasks"} <= imported_modules(str(path))


def test_the_formats_layer_imports_nothing_above_it():
  files = list(formats_files())
  assert len(files) >= 8
  offending = {os.path.relpath(path, FORMATS_DIR): sorted(
      module for module in imported_modules(path)
      if any(module == above or module.startswith(above + ".") for above in ABOVE))
      for path in files}
  assert not {path: modules for path, modules in offending.items() if modules}


def test_detect_names_the_layout_it_finds(tmp_path, tokenizer_path):
  export_dir = export_helpers.export_pretrained(str(tmp_path), tokenizer_path)
  assert registry.detect(export_dir) is flax_export
  unknown = tmp_path / "unknown"
  unknown.mkdir()
  (unknown / "weights.bin").write_bytes(b"\0" * 8)
  with pytest.raises(errors.InputError, match=r"not a checkpoint layout amos_jax reads; "
                                              r"expected one of: .*Found: weights\.bin"):
    registry.detect(str(unknown))
  with pytest.raises(FileNotFoundError, match="is not a directory"):
    registry.detect(str(tmp_path / "missing"))
