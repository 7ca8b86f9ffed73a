"""config.json of a Hugging Face export <-> amos_jax's model config and task.

Everything TextEncoder needs is in the transformers names of configuration_amos_jax.py; the
amos_jax-only settings (compute dtype, attention kernel) are not part of the model and are
chosen again when the export is read back.
"""

import ml_collections
import numpy as np

from amos_jax import errors
from amos_jax.data import tokenizer_kinds
from amos_jax.formats import encoder_tree
from amos_jax.models import amos
from amos_jax.models import transformer

MODEL_TYPE = "amos_jax"
CONFIG_CLASS = "AmosJaxConfig"
MODEL_CLASS = "AmosJaxModel"
CLASSIFIER_CLASS = "AmosJaxForSequenceClassification"
CONFIGURATION_MODULE = "configuration_amos_jax"
MODELING_MODULE = "modeling_amos_jax"
# Architecture options under the same name in both configs (models/amos.py's
# ARCHITECTURE_DEFAULTS gives their value for configs written before each existed).
_OPTIONS = ("relative_position_bucket_function", "layer_norm_eps", "type_vocab_size",
            "pad_token_id", "sep_token_id", "embedding_size", "classifier_activation")

# (transformers name, amos_jax model config name): the same number under two names.
_RENAMED = (
    ("vocab_size", "vocab_size"),
    ("hidden_size", "hidden_size"),
    ("num_hidden_layers", "num_layers"),
    ("num_attention_heads", "num_heads"),
    ("intermediate_size", "ffn_size"),
    ("hidden_dropout_prob", "dropout_rate"),
    ("max_position_embeddings", "max_position_embeddings"),
    ("relative_position_buckets", "relative_position_buckets"),
    ("relative_position_max_distance", "relative_position_max_distance"),
    ("initializer_range", "init_std"),
)
_FLOAT_KEYS = ("hidden_dropout_prob", "initializer_range")
# Which tokenizer the export carries, for amos_jax reading it back: "sentencepiece"
# (amos_jax's own; exports without the key), "wordpiece" (a converted BERT/ELECTRA model) or
# "authors_sentencepiece" (a converted AMOS/COCO-LM authors' model): every kind amos_jax reads.
TOKENIZER_KEY = "amos_jax_tokenizer"
TOKENIZER_KINDS = tokenizer_kinds.KINDS


def to_hf(model: dict, task, param_dtype: str,
          tokenizer_kind: str = tokenizer_kinds.SENTENCEPIECE) -> dict:
  """config.json contents for an amos_jax model config (a dict), an optional task and the
  kind of tokenizer written beside it."""
  config = {hf_name: model[name] for hf_name, name in _RENAMED}
  config.update(
      model_type=MODEL_TYPE,
      architectures=[CLASSIFIER_CLASS if task is not None else MODEL_CLASS],
      auto_map={
          "AutoConfig": f"{CONFIGURATION_MODULE}.{CONFIG_CLASS}",
          "AutoModel": f"{MODELING_MODULE}.{MODEL_CLASS}",
          "AutoModelForSequenceClassification": f"{MODELING_MODULE}.{CLASSIFIER_CLASS}",
      },
      # Exports made before attention dropout existed trained without it.
      attention_probs_dropout_prob=model.get("attention_dropout_rate", 0.0),
      hidden_act="gelu",
      dtype=param_dtype,
      tie_word_embeddings=False,
  )
  config[TOKENIZER_KEY] = tokenizer_kind
  model_config = ml_collections.ConfigDict(model)
  config.update({key: amos.architecture_option(model_config, key) for key in _OPTIONS})
  if task is not None:
    config.update(
        finetuning_task=task.name,
        problem_type="regression" if task.is_regression else "single_label_classification",
        num_labels=task.num_labels,
        id2label={str(i): name for i, name in enumerate(task.label_names)} or {"0": "score"},
        label2id={name: i for i, name in enumerate(task.label_names)} or {"score": 0},
    )
  return config


def from_hf(config: dict, source: str):
  """(amos_jax model ConfigDict, TaskInfo or None) of a config.json dict; `source` names the
  file in errors."""
  if config.get("model_type") != MODEL_TYPE:
    raise errors.InputError(f"{source}: model_type is {config.get('model_type')!r}, expected "
                            f"{MODEL_TYPE!r} (an amos_jax Hugging Face export).")
  function = config.get("relative_position_bucket_function", "t5_bidirectional")
  if function not in transformer.BUCKET_FUNCTIONS:
    raise errors.InputError(
        f"{source}: relative_position_bucket_function is {function!r}; amos_jax computes "
        f"{sorted(transformer.BUCKET_FUNCTIONS)}.")
  if config.get("hidden_act", "gelu") != "gelu":
    raise errors.InputError(f"{source}: hidden_act is {config.get('hidden_act')!r}; amos_jax's "
                            "encoder has 'gelu'.")
  model = {key: config.get(key, amos.ARCHITECTURE_DEFAULTS[key]) for key in _OPTIONS}
  model["relative_position_bucket_function"] = function
  for hf_name, name in _RENAMED:
    value = config.get(hf_name)
    is_float = hf_name in _FLOAT_KEYS
    if not isinstance(value, (int, float) if is_float else int) or isinstance(value, bool):
      raise errors.InputError(f"{source}: {hf_name} is {value!r}, expected "
                              f"{'a number' if is_float else 'an integer'}.")
    model[name] = float(value) if is_float else value
  model["attention_dropout_rate"] = float(config.get("attention_probs_dropout_prob", 0.0))
  dtype = config.get("dtype") or config.get("torch_dtype") or "float32"
  # Compute settings are amos_jax's, not the model's: an export runs with the defaults.
  model.update(dtype="float32", param_dtype=np.dtype(_numpy_dtype(dtype, source)).name,
               attention_implementation=None, remat=False)
  task = None
  if config.get("architectures") == [CLASSIFIER_CLASS] or config.get("finetuning_task"):
    task = _task(config, source)
  return ml_collections.ConfigDict(model), task


def tokenizer_kind(config: dict, source: str) -> str:
  """The kind of tokenizer config.json says the export carries."""
  kind = config.get(TOKENIZER_KEY, tokenizer_kinds.SENTENCEPIECE)
  if kind not in TOKENIZER_KINDS:
    raise errors.InputError(f"{source}: {TOKENIZER_KEY} is {kind!r}, expected one of "
                            f"{list(TOKENIZER_KINDS)}.")
  return kind


def _numpy_dtype(name: str, source: str):
  import ml_dtypes  # jax's own dependency, for bfloat16 in numpy.
  dtypes = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}
  if name not in dtypes:
    raise errors.InputError(f"{source}: dtype {name!r} is not one of {sorted(dtypes)}.")
  return dtypes[name]


def _task(config: dict, source: str) -> encoder_tree.TaskInfo:
  id2label = config.get("id2label")
  if not isinstance(id2label, dict) or not id2label:
    raise errors.InputError(f"{source}: a sequence-classification export needs id2label.")
  name = str(config.get("finetuning_task") or "")
  if config.get("problem_type") == "regression":
    return encoder_tree.TaskInfo(name, ())
  try:
    labels = [id2label[str(i)] for i in range(len(id2label))]
  except KeyError as e:
    raise errors.InputError(f"{source}: id2label's keys are not 0..{len(id2label) - 1}.") from e
  return encoder_tree.TaskInfo(name, tuple(labels))
