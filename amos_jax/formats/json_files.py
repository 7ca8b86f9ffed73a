"""The project's JSON records (checkpoints' config.json, fine-tuning results.json), read one way."""

import json
import os

from amos_jax import errors


def read(path: str):
  """The parsed file; an InputError naming it when it is not valid UTF-8 JSON (truncated, or
  another kind of file)."""
  try:
    with open(path, "rb") as f:
      return json.loads(f.read().decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise errors.InputError(f"{path} is not valid JSON ({e}): truncated, or another kind of "
                            "file.") from e


def read_dict_or_none(path: str) -> dict | None:
  """The file's object, or None when it is missing, damaged or not an object: what a format's
  `recognise` asks before claiming a directory (registry.py names a damaged file)."""
  if not os.path.isfile(path):
    return None
  try:
    value = read(path)
  except errors.InputError:
    return None
  return value if isinstance(value, dict) else None


def read_dict(path: str) -> dict:
  """The file's object; an InputError naming the file otherwise."""
  value = read(path)
  if not isinstance(value, dict):
    raise errors.InputError(f"{path} holds a JSON {type(value).__name__}, not an object.")
  return value
