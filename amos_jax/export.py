"""Writes and reads the portable export of a pretrained or fine-tuned encoder.

An export is a directory holding only what inference needs:

  config.json       format marker and version, the model hyperparameters, the task of a
                    fine-tuned model, and the size and sha256 of the two files below
  params.msgpack    flax.serialization msgpack of the TextEncoder parameter tree, or of the
                    SequenceClassifier tree ({encoder, head}) for a fine-tuned model
  tokenizer.model   the SentencePiece model the encoder was trained with

No generator, mixture, RTD head or optimizer state is written. `amos_jax.inference.load` reads
it back; this module also holds the checks both sides share, so the format is defined once.
`export_format="hf"` writes the same encoder as a Hugging Face transformers model instead
(amos_jax/hf/writer.py), which inference.load reads back too.

The directory is built under a temporary name next to `out_dir` and renamed last, so a crash
never leaves something that looks like a complete export.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Sequence

import flax.serialization
import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from amos_jax import errors
from amos_jax.models import amos
from amos_jax.models import classifier
from amos_jax.models import span

FORMAT = "amos_jax.encoder"
FORMAT_VERSION = 1

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
TOKENIZER_FILE = "tokenizer.model"

# Every model hyperparameter TextEncoder reads; an export without one cannot be rebuilt.
ENCODER_CONFIG_KEYS = (
    "vocab_size", "hidden_size", "num_layers", "num_heads", "ffn_size", "dropout_rate",
    "max_position_embeddings", "relative_position_buckets", "relative_position_max_distance",
    "dtype", "param_dtype", "attention_implementation", "init_std")

# Name of the head subtree in a SequenceClassifier tree, written to config.json for readers
# outside this codebase.
HEAD_PARAMS = "head"

# Kinds of fine-tuned head (config.json's task.head; exports without one are classifiers).
CLASSIFICATION_HEAD = "classification"  # SequenceClassifier: GLUE.
SPAN_HEAD = "span"  # SpanExtractor: start/end logits per token, SQuAD.


@dataclasses.dataclass(frozen=True)
class TaskInfo:
  """What a fine-tuned head predicts; glue.tasks.TaskSpec has the same two fields."""
  name: str
  label_names: Sequence[str]  # In label-id order; empty for regression.
  head: str = CLASSIFICATION_HEAD  # Or SPAN_HEAD (label_names are then "start", "end").

  @property
  def is_regression(self) -> bool:
    """A single float score (STS-B) instead of a class."""
    return not self.label_names

  @property
  def num_labels(self) -> int:
    """Output width of the head: 1 for regression."""
    return len(self.label_names) or 1


def build_module(model_config: ml_collections.ConfigDict, task: TaskInfo | None):
  """TextEncoder for a pretrained export; SequenceClassifier or SpanExtractor (SQuAD) for a
  fine-tuned one."""
  if task is None:
    return amos.TextEncoder(model_config)
  if head_of(task) == SPAN_HEAD:
    return span.SpanExtractor(model_config)
  return classifier.SequenceClassifier(model_config, task.num_labels)


def head_of(task) -> str:
  """The task's head kind; a glue.tasks.TaskSpec has no `head` field: it is a classifier."""
  return getattr(task, "head", CLASSIFICATION_HEAD)


def expected_params(module) -> Any:
  """The module's parameter tree as ShapeDtypeStructs, without allocating it."""
  token_ids = jnp.zeros((1, 2), jnp.int32)
  variables = jax.eval_shape(module.init, jax.random.key(0), token_ids, token_ids)
  return variables["params"]


def check_param_tree(params, expected, source: str, against: str = "config.json's model"):
  """Raises ValueError naming the first path where `params` and `expected` disagree.

  `source` names the params (a file) and `against` what `expected` was built from.
  """
  got = flax.traverse_util.flatten_dict(params, sep="/") if isinstance(params, dict) else None
  if not got:
    raise errors.InputError(f"{source} holds no parameter tree (got {type(params).__name__}).")
  want = flax.traverse_util.flatten_dict(expected, sep="/")
  missing = sorted(set(want) - set(got))
  if missing:
    raise errors.InputError(
        f"{source} lacks parameter {missing[0]!r} (shape {tuple(want[missing[0]].shape)}) that "
        f"{against} needs ({len(missing)} missing in all).")
  unexpected = sorted(set(got) - set(want))
  if unexpected:
    raise errors.InputError(
        f"{source} has parameter {unexpected[0]!r} that {against} does not have "
        f"({len(unexpected)} unexpected in all).")
  for path in sorted(want):
    value, spec = got[path], want[path]
    if not hasattr(value, "shape") or not hasattr(value, "dtype"):
      raise errors.InputError(f"{source}: {path!r} is a {type(value).__name__}, not an array.")
    if tuple(value.shape) != tuple(spec.shape):
      raise errors.InputError(
          f"{source}: {path!r} has shape {tuple(value.shape)} but {against} needs "
          f"{tuple(spec.shape)}.")
    if jnp.dtype(value.dtype) != jnp.dtype(spec.dtype):
      raise errors.InputError(
          f"{source}: {path!r} is {jnp.dtype(value.dtype).name} but {against} needs "
          f"{jnp.dtype(spec.dtype).name} (param_dtype).")


def _encoder_tree(params, task: TaskInfo | None):
  """The tree to export: TextEncoder params, or with a task a SequenceClassifier tree.

  An AmosModel tree is cut down to its TextEncoder part; generator, mixture and RTD head
  are dropped.
  """
  if task is not None:
    if set(params) != {"encoder", HEAD_PARAMS}:
      raise errors.InputError(
          f"A fine-tuned export takes a SequenceClassifier tree with keys encoder and "
          f"{HEAD_PARAMS}; got keys {sorted(params)}.")
    return params
  if not set(amos.ENCODER_PARAMS) <= set(params):
    raise errors.InputError(
        f"Expected an AmosModel or TextEncoder tree with keys {list(amos.ENCODER_PARAMS)}; "
        f"got keys {sorted(params)}.")
  return amos.encoder_params(params)


def _cast(params, dtype):
  """Casts floating leaves to `dtype`; integer leaves (none today) are left alone."""
  def cast_leaf(leaf):
    return leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf
  return jax.tree.map(cast_leaf, params)


def _file_record(path: str) -> dict:
  """Name, size and sha256 of a file, as config.json records it."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 24), b""):
      digest.update(chunk)
  return {"file": os.path.basename(path), "num_bytes": os.path.getsize(path),
          "sha256": digest.hexdigest()}


def _write_bytes(path: str, data: bytes):
  with open(path, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


FORMATS = ("flax", "hf")


def _write_flax(staging: str, tree, module, model: dict, tokenizer_path: str,
                task: TaskInfo | None):
  """The amos_jax export's files (this module's docstring) into `staging`."""
  params_path = os.path.join(staging, PARAMS_FILE)
  _write_bytes(params_path, flax.serialization.msgpack_serialize(tree))
  tokenizer_copy = os.path.join(staging, TOKENIZER_FILE)
  shutil.copyfile(tokenizer_path, tokenizer_copy)
  task_record = None
  if task is not None:
    task_record = {"name": task.name, "label_names": list(task.label_names),
                   "is_regression": task.is_regression, "num_labels": task.num_labels,
                   "head_params": HEAD_PARAMS, "head": head_of(task)}
  record = {
      "format": FORMAT,
      "format_version": FORMAT_VERSION,
      "module": type(module).__name__,
      "model": model,
      "task": task_record,
      "params": _file_record(params_path),
      "tokenizer": _file_record(tokenizer_copy),
  }
  _write_bytes(os.path.join(staging, CONFIG_FILE),
               json.dumps(record, indent=2, sort_keys=True).encode())


def export_encoder(params, model_config: ml_collections.ConfigDict, tokenizer_path: str,
                   out_dir: str, *, task: TaskInfo | None = None, dtype: str | None = None,
                   overwrite: bool = False, export_format: str = "flax",
                   card: dict | None = None) -> str:
  """Writes the discriminator encoder (and a fine-tuned head) to `out_dir`; returns its path.

  Args:
    params: an AmosModel tree (its TextEncoder part is taken), a TextEncoder tree, or, with
      `task`, a SequenceClassifier tree {encoder, head}. Host or device arrays.
    model_config: the `model` ConfigDict the params were built with.
    tokenizer_path: the SentencePiece .model the encoder was trained with; copied.
    out_dir: the export directory; must not exist unless `overwrite`.
    task: label names (and task name) of a fine-tuned model; None for a pretrained encoder.
      A glue.tasks.TaskSpec works too.
    dtype: e.g. "bfloat16" to cast the floating parameters; None keeps them as they are.
      config.json's param_dtype records the dtype written.
    overwrite: replace an existing export at `out_dir` (swapped in by rename, at the end).
    export_format: "flax" (this module's format) or "hf" (a Hugging Face transformers model
      with its own code, amos_jax/hf; needs the `tokenizers` library).
    card: for "hf", facts for the model card (amos_jax.hf.model_card.render).

  Call it from one process only: every host holds the same replicated parameters.
  """
  if export_format not in FORMATS:
    raise errors.InputError(f"export format {export_format!r} is not one of {list(FORMATS)}.")
  if export_format == "hf" and task is not None and head_of(task) != CLASSIFICATION_HEAD:
    raise errors.InputError(
        f"The Hugging Face export writes encoders and classification heads, not "
        f"a {head_of(task)!r} head ({task.name}); export it with format 'flax'.")
  out_dir = os.path.abspath(out_dir)
  if os.path.exists(out_dir) and not overwrite:
    raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it.")
  if not os.path.isfile(tokenizer_path):
    raise FileNotFoundError(f"No SentencePiece model at {tokenizer_path!r}.")

  model = {k: v for k, v in model_config.to_dict().items() if k != "generator"}
  missing = [k for k in ENCODER_CONFIG_KEYS if k not in model]
  if missing:
    raise errors.InputError(f"model_config lacks {missing}: the export could not be rebuilt.")
  tree = jax.tree.map(np.asarray, jax.device_get(_encoder_tree(params, task)))
  if dtype is not None:
    tree = _cast(tree, jnp.dtype(dtype))
    model["param_dtype"] = jnp.dtype(dtype).name
  module = build_module(ml_collections.ConfigDict(model), task)
  check_param_tree(tree, expected_params(module), "params", against="model_config")

  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
  try:
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the export from other users.
    if export_format == "hf":
      from amos_jax.hf import writer  # Needs the `tokenizers` library (requirements-hf.txt).
      writer.write(staging, tree, model, tokenizer_path, task, card)
    else:
      _write_flax(staging, tree, module, model, tokenizer_path, task)
    if os.path.exists(out_dir):
      retired = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.old-", dir=parent)
      os.rename(out_dir, os.path.join(retired, "export"))
      os.rename(staging, out_dir)
      shutil.rmtree(retired)
    else:
      os.rename(staging, out_dir)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return out_dir


def read_config(export_dir: str) -> tuple[dict, ml_collections.ConfigDict, TaskInfo | None]:
  """Parses and checks config.json: (the whole record, the model config, the task)."""
  path = os.path.join(export_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found: {export_dir!r} is not an amos_jax export.")
  try:
    with open(path, "rb") as f:
      record = json.loads(f.read().decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise errors.InputError(f"{path} is not valid JSON ({e}): truncated or not an export.") from e
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
  missing = [k for k in ENCODER_CONFIG_KEYS if k not in record["model"]]
  if missing:
    raise errors.InputError(f"{path}: model lacks {missing}, needed to rebuild the encoder.")
  task = None
  if record.get("task") is not None:
    task_record = record["task"]
    try:
      task = TaskInfo(task_record["name"], tuple(task_record["label_names"]),
                      task_record.get("head", CLASSIFICATION_HEAD))
      is_regression = task_record["is_regression"]
    except (KeyError, TypeError) as e:
      raise errors.InputError(f"{path}: task section is incomplete ({e!r}).") from e
    if is_regression != task.is_regression or task_record.get("num_labels") != task.num_labels:
      raise errors.InputError(
          f"{path}: task says is_regression={is_regression}, num_labels="
          f"{task_record.get('num_labels')} but has {len(task.label_names)} label names.")
    if task.head not in (CLASSIFICATION_HEAD, SPAN_HEAD):
      raise errors.InputError(f"{path}: task head is {task.head!r}; this code reads "
                       f"{CLASSIFICATION_HEAD!r} and {SPAN_HEAD!r} heads.")
    if task_record.get("head_params") != HEAD_PARAMS:
      raise errors.InputError(f"{path}: head_params is {task_record.get('head_params')!r}; this "
                              f"code reads heads stored under {HEAD_PARAMS!r}.")
  return record, ml_collections.ConfigDict(record["model"]), task


def check_file(export_dir: str, file_record: dict) -> str:
  """Checks a file's size and sha256 against config.json; returns its path."""
  path = os.path.join(export_dir, str(file_record.get("file")))
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} not found, though config.json lists it.")
  found = _file_record(path)
  if found["num_bytes"] != file_record.get("num_bytes"):
    raise errors.InputError(f"{path} has {found['num_bytes']} bytes but config.json records "
                            f"{file_record.get('num_bytes')}: truncated or replaced.")
  if found["sha256"] != file_record.get("sha256"):
    raise errors.InputError(f"{path} does not match the sha256 in config.json: corrupted or "
                            "replaced by a file from another export.")
  return path


def read_params(path: str):
  """Restores a msgpack parameter tree; a truncated or foreign file is a ValueError."""
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


def export_checkpoint(workdir: str, out_dir: str, *, dtype: str | None = None,
                      overwrite: bool = False, step: int | None = None,
                      export_format: str = "flax") -> str:
  """Exports the encoder of a pretraining workdir's newest (or `step`) checkpoint, or
  converts an export (e.g. a GLUE run's seed_0/best) to `export_format`."""
  from amos_jax.finetune import init_checkpoint  # Reads workdirs; export readers do not need it.
  from amos_jax.train import checkpointing  # Training code; export readers do not need it.
  config_path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(config_path):
    raise FileNotFoundError(f"{config_path} not found: is {workdir} a pretraining workdir or "
                            "an export?")
  init = init_checkpoint.load(workdir, read_params=False)
  if init.kind == init_checkpoint.PRETRAINING_WORKDIR:
    step, params = checkpointing.load_params(os.path.join(workdir, "checkpoints"), step)
    logging.info("Exporting the encoder of checkpoint step %d in %s.", step, workdir)
  elif step is not None:
    raise errors.InputError(f"--step applies to pretraining workdirs; {workdir} is an export.")
  else:
    params = init_checkpoint.load(workdir).params
  card = None
  if export_format == "hf":
    from amos_jax.hf import model_card
    card = (model_card.facts_from_workdir(workdir, step)
            if init.kind == init_checkpoint.PRETRAINING_WORKDIR
            else model_card.facts_from_finetuned(workdir) if init.task is not None else None)
  return export_encoder(params, init.model_config, init.tokenizer.model_path, out_dir,
                        task=init.task, dtype=dtype, overwrite=overwrite,
                        export_format=export_format, card=card)


def cli():
  """The command line (also the `amos-jax-export` console script)."""
  from absl import app, flags
  from amos_jax import cli_errors
  from amos_jax import summaries
  flags.DEFINE_string("workdir", None,
                      "Pretraining workdir (config.json, checkpoints/), or an export to convert.")
  flags.DEFINE_string("out", None, "Export directory to write.")
  flags.DEFINE_enum("format", "flax", list(FORMATS),
                    "flax: amos_jax's export; hf: a Hugging Face transformers model.")
  flags.DEFINE_string("dtype", None, "Cast the parameters, e.g. bfloat16.")
  flags.DEFINE_integer("step", None, "Checkpoint step; default the newest.")
  flags.DEFINE_bool("overwrite", False, "Replace an existing export.")
  flags.mark_flags_as_required(["workdir", "out"])

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    path = export_checkpoint(flags.FLAGS.workdir, flags.FLAGS.out, dtype=flags.FLAGS.dtype,
                             overwrite=flags.FLAGS.overwrite, step=flags.FLAGS.step,
                             export_format=flags.FLAGS.format)
    print(summaries.export(path, source=flags.FLAGS.workdir,
                           files=sorted(name for name in os.listdir(path)
                                        if os.path.isfile(os.path.join(path, name)))))

  cli_errors.run(main)


if __name__ == "__main__":
  cli()
