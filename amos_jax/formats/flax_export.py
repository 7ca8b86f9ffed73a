"""amos_jax's own export: a directory holding only what inference needs.

  config.json       format marker and version, the model hyperparameters, the task of a
                    fine-tuned model, and the size and sha256 of the two files below
  params.msgpack    flax.serialization msgpack of the TextEncoder parameter tree, or of the
                    SequenceClassifier/SpanExtractor tree ({encoder, head}) for a fine-tuned model
  tokenizer.model   the SentencePiece model the encoder was trained with; a converted
                    checkpoint's own tokenizer files instead (sp.model and dict.txt for the
                    AMOS authors', tokenizer.json for WordPiece), listed in config.json's
                    tokenizer section with their kind

No generator, mixture, RTD head or optimizer state is written.
"""

import hashlib
import json
import os

import flax.serialization
import ml_collections

from amos_jax import errors
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data import tokenizer_kinds
from amos_jax.formats import encoder_tree
from amos_jax.formats import json_files
from amos_jax.formats import loaded
from amos_jax.models import amos

KIND = "export"
NAME = "amos_jax export"
FORMAT = "amos_jax.encoder"
FORMAT_VERSION = 1

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
TOKENIZER_FILE = tokenizer_lib.MODEL_FILE


def file_record(path: str) -> dict:
  """Name, size and sha256 of a file, as config.json records it."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 24), b""):
      digest.update(chunk)
  return {"file": os.path.basename(path), "num_bytes": os.path.getsize(path),
          "sha256": digest.hexdigest()}


def write_bytes(path: str, data: bytes):
  """Writes and fsyncs `data`: the directory is renamed into place only after this."""
  with open(path, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def write(staging: str, tree, model: dict, tokenizer, task, card=None):
  """The export's files (this module's docstring) into `staging`; `card` is unused here."""
  del card  # Model cards are a Hugging Face convention.
  params_path = os.path.join(staging, PARAMS_FILE)
  write_bytes(params_path, flax.serialization.msgpack_serialize(tree))
  tokenizer_files = tokenizer.save(staging)
  for name in tokenizer_files:
    with open(os.path.join(staging, name), "rb") as f:
      os.fsync(f.fileno())
  if tokenizer.kind == tokenizer_kinds.SENTENCEPIECE:
    # The layout of every export written before other tokenizers could be read.
    tokenizer_record = file_record(os.path.join(staging, TOKENIZER_FILE))
  else:
    tokenizer_record = {"kind": tokenizer.kind, "files": [
        file_record(os.path.join(staging, name)) for name in tokenizer_files]}
  task_record = None
  if task is not None:
    task_record = {"name": task.name, "label_names": list(task.label_names),
                   "is_regression": task.is_regression, "num_labels": task.num_labels,
                   "head_params": encoder_tree.HEAD_PARAMS, "head": encoder_tree.head_of(task)}
  module = encoder_tree.build_module(ml_collections.ConfigDict(model), task)
  record = {
      "format": FORMAT,
      "format_version": FORMAT_VERSION,
      "module": type(module).__name__,
      "model": model,
      "task": task_record,
      "params": file_record(params_path),
      "tokenizer": tokenizer_record,
  }
  write_bytes(os.path.join(staging, CONFIG_FILE),
              json.dumps(record, indent=2, sort_keys=True).encode())


def recognise(path: str) -> bool:
  """Whether `path` holds an amos_jax export: config.json with this format's marker."""
  record = json_files.read_dict_or_none(os.path.join(path, CONFIG_FILE))
  return record is not None and record.get("format") == FORMAT


def read_config(export_dir: str):
  """Parses and checks config.json: (the whole record, the model config, the task)."""
  path = os.path.join(export_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: {export_dir!r} is not an amos_jax export.")
  record = json_files.read(path)
  if not isinstance(record, dict) or record.get("format") != FORMAT:
    found = record.get("format") if isinstance(record, dict) else type(record).__name__
    raise errors.InputError(f"{path} is not an amos_jax export: format is {found!r}, "
                            f"expected {FORMAT!r}.")
  if record.get("format_version") != FORMAT_VERSION:
    raise errors.InputError(
        f"{path} has format_version {record.get('format_version')!r}; this code "
        f"reads version {FORMAT_VERSION}.")
  for key in ("model", "params", "tokenizer"):
    if not isinstance(record.get(key), dict):
      raise errors.InputError(f"{path} lacks the {key!r} section.")
  missing = [k for k in encoder_tree.ENCODER_CONFIG_KEYS if k not in record["model"]]
  if missing:
    raise errors.InputError(f"{path}: model lacks {missing}, needed to rebuild the encoder.")
  task = None
  if record.get("task") is not None:
    task = _read_task(record["task"], path)
  return record, amos.with_architecture_defaults(ml_collections.ConfigDict(record["model"])), task


def _read_task(task_record, path: str) -> encoder_tree.TaskInfo:
  try:
    task = encoder_tree.TaskInfo(task_record["name"], tuple(task_record["label_names"]),
                                 task_record.get("head", encoder_tree.CLASSIFICATION_HEAD))
    is_regression = task_record["is_regression"]
  except (KeyError, TypeError) as e:
    raise errors.InputError(f"{path}: task section is incomplete ({e!r}).") from e
  if is_regression != task.is_regression or task_record.get("num_labels") != task.num_labels:
    raise errors.InputError(
        f"{path}: task says is_regression={is_regression}, num_labels="
        f"{task_record.get('num_labels')} but has {len(task.label_names)} label names.")
  if task.head not in (encoder_tree.CLASSIFICATION_HEAD, encoder_tree.SPAN_HEAD):
    raise errors.InputError(f"{path}: task head is {task.head!r}; this code reads "
                            f"{encoder_tree.CLASSIFICATION_HEAD!r} and "
                            f"{encoder_tree.SPAN_HEAD!r} heads.")
  if task_record.get("head_params") != encoder_tree.HEAD_PARAMS:
    raise errors.InputError(f"{path}: head_params is {task_record.get('head_params')!r}; this "
                            f"code reads heads stored under {encoder_tree.HEAD_PARAMS!r}.")
  return task


def check_file(export_dir: str, record: dict) -> str:
  """Checks a file's size and sha256 against config.json; returns its path."""
  path = os.path.join(export_dir, str(record.get("file")))
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found, though config.json lists it.")
  found = file_record(path)
  if found["num_bytes"] != record.get("num_bytes"):
    raise errors.InputError(f"{path} has {found['num_bytes']} bytes but config.json records "
                            f"{record.get('num_bytes')}: truncated or replaced.")
  if found["sha256"] != record.get("sha256"):
    raise errors.InputError(f"{path} does not match the sha256 in config.json: corrupted or "
                            "replaced by a file from another export.")
  return path


def read_params_file(path: str):
  """Restores a msgpack parameter tree; a truncated or foreign file is an InputError."""
  with open(path, "rb") as f:
    data = f.read()
  try:
    tree = flax.serialization.msgpack_restore(data)
  except Exception as e:  # msgpack raises several unrelated types for malformed input.
    raise errors.InputError(
        f"{path} is not a flax msgpack parameter file ({type(e).__name__}: {e}): truncated "
        "or a foreign file.") from e
  if not isinstance(tree, dict):
    raise errors.InputError(f"{path} is not a flax msgpack parameter file: it decodes to a "
                            f"{type(tree).__name__}, not a tree.")
  return tree


def _read_tokenizer(path: str, record: dict, vocab_size: int):
  """The tokenizer config.json's section describes, every file checked."""
  if "kind" not in record:
    return tokenizer_lib.load_tokenizer(check_file(path, record), vocab_size)
  files = record.get("files")
  if not isinstance(files, list) or not files:
    raise errors.InputError(f"{path}/{CONFIG_FILE}: the tokenizer section lists no files.")
  for file in files:
    check_file(path, file)
  return tokenizer_kinds.load(record["kind"], path, vocab_size)


def read(path: str, read_params: bool = True, step: int | None = None) -> loaded.Checkpoint:
  """An export's model config, task, tokenizer and (unless not wanted) params, every file
  checked against config.json."""
  del step  # An export holds one set of weights (formats/registry.py refuses a step).
  record, model_config, task = read_config(path)
  tokenizer = _read_tokenizer(path, record["tokenizer"], model_config.vocab_size)
  params = None
  if read_params:
    params_path = check_file(path, record["params"])
    params = read_params_file(params_path)
    encoder_tree.check_tree_for(params, model_config, task, params_path)
  return loaded.Checkpoint(KIND, path, model_config, tokenizer, params, task)
