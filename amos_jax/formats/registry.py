"""Every checkpoint layout amos_jax reads or writes, recognised by looking at the directory.

`load(path)` finds the format whose `recognise` accepts the directory and reads it into a
`loaded.Checkpoint`; `write_export` writes one of the export formats, whole or not at all.
Fine-tuning (init_checkpoint), inference.load and the export command all come through here,
so each of them accepts every layout in READERS.
"""

import logging
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from amos_jax import errors
from amos_jax.formats import authors_fairseq
from amos_jax.formats import authors_hf
from amos_jax.formats import encoder_tree
from amos_jax.formats import flax_export
from amos_jax.formats import hf_export
from amos_jax.formats import json_files
from amos_jax.formats import loaded
from amos_jax.formats import pretraining_workdir
from amos_jax.formats import transformers_bert
from amos_jax.models import amos

# In the order they are tried: each recognises its own marker file or key, so at most one
# accepts a directory.
READERS = (flax_export, hf_export, pretraining_workdir, transformers_bert, authors_hf,
           authors_fairseq)

# export_format name -> the module that writes it.
WRITERS = {"flax": flax_export, "hf": hf_export}


def detect(path: str):
  """The format module that recognises `path`; an InputError listing the layouts if none."""
  if not os.path.isdir(path):
    raise FileNotFoundError(f"{path!r} is not a directory: expected a checkpoint directory "
                            f"({', '.join(reader.NAME for reader in READERS)}).")
  for reader in READERS:
    if reader.recognise(path):
      return reader
  _check_json(os.path.join(path, "config.json"))
  raise errors.InputError(
      f"{path!r} is not a checkpoint layout amos_jax reads; expected one of: "
      f"{'; '.join(reader.NAME for reader in READERS)}. Found: "
      f"{', '.join(sorted(os.listdir(path))[:12]) or 'an empty directory'}.")


def _check_json(config_path: str):
  """A damaged config.json is named as such, not as a directory of unknown layout."""
  if os.path.isfile(config_path):
    json_files.read(config_path)


def load(path: str, *, read_params: bool = True, step: int | None = None) -> loaded.Checkpoint:
  """Reads any supported checkpoint directory; `read_params=False` reads only its model
  config and tokenizer.

  step: a pretraining workdir's checkpoint step (None: its newest), e.g. to fine-tune points
  along a pretraining run; other layouts hold one set of weights and take none.
  """
  path = os.path.abspath(path)
  reader = detect(path)
  if step is not None and reader is not pretraining_workdir:
    raise errors.InputError(
        f"A checkpoint step ({step}: init_checkpoint_step, or the export command's --step) "
        f"was given, but {path} is an {reader.NAME}, which holds one set of weights: give "
        "no step, or a pretraining workdir.")
  checkpoint = reader.read(path, read_params, step)
  _check_special_ids(checkpoint)
  logging.info("Read %s", describe(checkpoint))
  return checkpoint


def _check_special_ids(checkpoint: loaded.Checkpoint):
  """The model's padding and separator ids (its attention mask, its token types) are its
  tokenizer's: readers set both from the tokenizer, and a hand-edited config is caught here."""
  special = checkpoint.tokenizer.special
  for key, expected in (("pad_token_id", special.pad), ("sep_token_id", special.sep)):
    value = amos.architecture_option(checkpoint.model_config, key)
    if value != expected:
      raise errors.InputError(
          f"{checkpoint.path}: the model's {key} is {value} but its tokenizer's id is "
          f"{expected}: the config and the tokenizer belong to different models.")


def describe(checkpoint: loaded.Checkpoint) -> str:
  """One line: what was loaded from where (format, size, vocabulary, what was dropped)."""
  config = checkpoint.model_config
  name = next(reader.NAME for reader in READERS if reader.KIND == checkpoint.kind)
  parts = [f"{name} at {checkpoint.path}",
           f"{config.num_layers} x {config.hidden_size}, {config.num_heads} heads",
           f"vocabulary {config.vocab_size}"]
  if checkpoint.step is not None:
    parts.append(f"step {checkpoint.step}")
  if checkpoint.task is not None:
    parts.append(f"task {checkpoint.task.name}")
  return "; ".join(parts + list(checkpoint.notes))


def write_export(params, model_config: ml_collections.ConfigDict, tokenizer, out_dir: str, *,
                 task=None, dtype: str | None = None, overwrite: bool = False,
                 export_format: str = "flax", card: dict | None = None) -> str:
  """Writes the discriminator encoder (and a fine-tuned head) to `out_dir`; returns its path.

  Args:
    params: an AmosModel tree (its TextEncoder part is taken), a TextEncoder tree, or, with
      `task`, a SequenceClassifier/SpanExtractor tree {encoder, head}. Host or device arrays.
    model_config: the `model` ConfigDict the params were built with.
    tokenizer: the encoder's tokenizer (data.tokenizer.Tokenizer, or a converted
      checkpoint's: data/tokenizer_kinds.py); its files are copied.
    out_dir: the export directory; must not exist unless `overwrite`.
    task: label names (and task name) of a fine-tuned model; None for a pretrained encoder.
      A glue.tasks.TaskSpec works too.
    dtype: e.g. "bfloat16" to cast the floating parameters; None keeps them as they are.
      The written model config's param_dtype records the dtype written.
    overwrite: replace an existing export at `out_dir` (swapped in by rename, at the end).
    export_format: "flax" (formats/flax_export.py) or "hf" (formats/hf_export.py: a Hugging
      Face transformers model with its own code; needs the `tokenizers` library).
    card: for "hf", facts for the model card (formats/hf/model_card.render).

  The directory is built under a temporary name next to `out_dir` and renamed last, so a crash
  never leaves something that looks like a complete export. Call it from one process only:
  every host holds the same replicated parameters.
  """
  if export_format not in WRITERS:
    raise errors.InputError(
        f"export format {export_format!r} is not one of {list(WRITERS)}.")
  if (export_format == "hf" and task is not None
      and encoder_tree.head_of(task) != encoder_tree.CLASSIFICATION_HEAD):
    raise errors.InputError(
        f"The Hugging Face export writes encoders and classification heads, not "
        f"a {encoder_tree.head_of(task)!r} head ({task.name}); export it with format 'flax'.")
  out_dir = os.path.abspath(out_dir)
  if os.path.exists(out_dir) and not overwrite:
    raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it.")

  model = {k: v for k, v in model_config.to_dict().items() if k != "generator"}
  missing = [k for k in encoder_tree.ENCODER_CONFIG_KEYS if k not in model]
  if missing:
    raise errors.InputError(f"model_config lacks {missing}: the export could not be rebuilt.")
  tree = jax.tree.map(np.asarray, jax.device_get(encoder_tree.exported_tree(params, task)))
  if dtype is not None:
    tree = encoder_tree.cast_floating(tree, jnp.dtype(dtype))
    model["param_dtype"] = jnp.dtype(dtype).name
  encoder_tree.check_tree_for(tree, ml_collections.ConfigDict(model), task, "params",
                              against="model_config")

  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
  try:
    os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the export from other users.
    WRITERS[export_format].write(staging, tree, model, tokenizer, task, card)
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
