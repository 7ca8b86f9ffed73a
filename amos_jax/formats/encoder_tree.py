"""What every checkpoint format shares: the module a model config and task build, and the
checks of a parameter tree against it.

A format reader produces (model config, task, parameter tree); these functions rebuild the
Flax module from the first two and check the tree against it, so a checkpoint of another size
or vocabulary fails with the parameter path and both shapes instead of deep inside XLA.
"""

import dataclasses
from typing import Any, Sequence

import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections

from amos_jax import errors
from amos_jax.models import amos
from amos_jax.models import classifier
from amos_jax.models import span

# Every model hyperparameter TextEncoder needs; a checkpoint without one cannot be rebuilt.
# Keys added later (e.g. relative_position_bucket_function) have defaults that reproduce the
# checkpoints written before them, so they are not listed here.
ENCODER_CONFIG_KEYS = (
    "vocab_size", "hidden_size", "num_layers", "num_heads", "ffn_size", "dropout_rate",
    "max_position_embeddings", "relative_position_buckets", "relative_position_max_distance",
    "dtype", "param_dtype", "attention_implementation", "init_std")

# Name of the head subtree in a SequenceClassifier or SpanExtractor tree.
HEAD_PARAMS = "head"

# Kinds of fine-tuned head (a task's `head`; tasks without one are classifiers).
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


def head_of(task) -> str:
  """The task's head kind; a glue.tasks.TaskSpec has no `head` field: it is a classifier."""
  return getattr(task, "head", CLASSIFICATION_HEAD)


def build_module(model_config: ml_collections.ConfigDict, task):
  """TextEncoder for a pretrained encoder; SequenceClassifier or SpanExtractor (SQuAD) for a
  fine-tuned one."""
  if task is None:
    return amos.TextEncoder(model_config)
  if head_of(task) == SPAN_HEAD:
    return span.SpanExtractor(model_config)
  return classifier.SequenceClassifier(model_config, task.num_labels)


def expected_params(module) -> Any:
  """The module's parameter tree as ShapeDtypeStructs, without allocating it."""
  token_ids = jnp.zeros((1, 2), jnp.int32)
  variables = jax.eval_shape(module.init, jax.random.key(0), token_ids, token_ids)
  return variables["params"]


def check_param_tree(params, expected, source: str, against: str = "config.json's model"):
  """Raises InputError naming the first path where `params` and `expected` disagree.

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


def check_tree_for(params, model_config, task, source: str,
                   against: str = "config.json's model"):
  """check_param_tree against the module `model_config` and `task` build."""
  check_param_tree(params, expected_params(build_module(model_config, task)), source, against)


def exported_tree(params, task):
  """The tree an export holds: TextEncoder params, or with a task its {encoder, head} tree.

  An AmosModel tree is cut down to its TextEncoder part; generator, mixture and RTD head
  are dropped.
  """
  if task is not None:
    if set(params) != {"encoder", HEAD_PARAMS}:
      raise errors.InputError(
          f"A fine-tuned export takes a tree with keys encoder and {HEAD_PARAMS}; got keys "
          f"{sorted(params)}.")
    return params
  if not set(amos.ENCODER_PARAMS) <= set(params):
    raise errors.InputError(
        f"Expected an AmosModel or TextEncoder tree with keys {list(amos.ENCODER_PARAMS)}; "
        f"got keys {sorted(params)}.")
  return amos.encoder_params(params)


def config_integer(config: dict, key: str, source: str, default=None) -> int:
  """config[key] (or `default`), checked to be a non-negative integer; errors name `source`."""
  value = config.get(key, default)
  if not isinstance(value, int) or isinstance(value, bool) or value < 0:
    raise errors.InputError(f"{source}: {key} is {value!r}, expected a non-negative integer.")
  return value


def cast_floating(params, dtype):
  """Casts floating leaves to `dtype`; integer leaves (none today) are left alone."""
  def cast_leaf(leaf):
    return leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf
  return jax.tree.map(cast_leaf, params)
