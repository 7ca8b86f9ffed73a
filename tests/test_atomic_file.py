"""atomic_file: a file is replaced whole or left as it was."""

import json
import os

import pytest

from amos_jax import atomic_file


def test_the_new_content_replaces_the_old_whole(tmp_path):
  path = str(tmp_path / "record.json")
  atomic_file.write_json(path, {"b": 1, "a": [1, 2]})
  atomic_file.write_json(path, {"step": 7})
  with open(path, encoding="utf-8") as f:
    assert json.load(f) == {"step": 7}
  with atomic_file.replacing(path, "wb") as f:
    f.write(b"\x00\x01")
  with open(path, "rb") as f:
    assert f.read() == b"\x00\x01"
  assert os.listdir(tmp_path) == ["record.json"]  # No temporary file left.


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  with open(path, "w", encoding="utf-8") as f:
    f.write('{"step": 1}\n')
  with pytest.raises(RuntimeError, match="killed mid-write"):
    with atomic_file.replacing(path) as f:
      f.write('{"step": 1}\n{"st')
      raise RuntimeError("killed mid-write")
  with open(path, encoding="utf-8") as f:
    assert f.read() == '{"step": 1}\n'
  assert os.listdir(tmp_path) == ["metrics.jsonl"]


def test_unknown_mode_is_named(tmp_path):
  with pytest.raises(ValueError, match="mode='a': expected 'w' or 'wb'"):
    with atomic_file.replacing(str(tmp_path / "x"), "a"):
      pass
