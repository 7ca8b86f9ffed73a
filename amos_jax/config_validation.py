"""Fail fast, naming the key, on configs that would otherwise crash deep inside XLA."""

import ml_collections

from amos_jax import errors
from amos_jax.models import classifier
from amos_jax.models import transformer
from configs import default

_DTYPES = ("float32", "bfloat16", "float16")


class ConfigError(errors.InputError):
  pass


def flat_keys(config, prefix=""):
  """Every key of a ConfigDict, nested ones dotted ("model.generator.mlm_layers")."""
  keys = set()
  for name, value in config.items():
    keys.add(prefix + name)
    if isinstance(value, ml_collections.ConfigDict):
      keys |= flat_keys(value, prefix + name + ".")
  return keys


def require(condition: bool, key: str, expected: str, value):
  """Raises ConfigError "config.<key>=<value>: expected <expected>." unless `condition`."""
  if not condition:
    raise ConfigError(f"config.{key}={value!r}: expected {expected}.")


def validate(config: ml_collections.ConfigDict, device_count: int) -> None:
  """Raises ConfigError naming the first unknown key or invalid value of a pretraining config."""
  unknown = sorted(flat_keys(config) - flat_keys(default.get_base_config("tiny")))
  if unknown:
    raise ConfigError(f"Unknown config keys: {', '.join('config.' + k for k in unknown)}. "
                      "See configs/default.py for the keys that exist.")

  def positive_int(key):
    value = _lookup(config, key)
    require(isinstance(value, int) and value > 0, key, "a positive integer", value)

  for key in ("num_train_steps", "batch_size", "seq_len", "log_every_steps",
              "eval_every_steps", "checkpoint_every_steps", "keep_checkpoints",
              "max_consecutive_nonfinite_steps",
              "model.vocab_size", "model.hidden_size", "model.num_layers", "model.num_heads",
              "model.ffn_size", "model.max_position_embeddings"):
    positive_int(key)
  require(config.eval_batches >= 0, "eval_batches", "0 (the whole split) or more",
          config.eval_batches)
  accumulation = config.gradient_accumulation_steps
  require(isinstance(accumulation, int) and accumulation >= 0, "gradient_accumulation_steps",
          "0 (automatic) or a positive integer", accumulation)
  shards = device_count * max(accumulation, 1)
  require(config.batch_size % shards == 0, "batch_size",
          f"a multiple of {device_count} devices x {max(accumulation, 1)} "
          f"accumulation steps = {shards}", config.batch_size)
  require(config.seq_len <= config.model.max_position_embeddings, "seq_len",
          f"at most model.max_position_embeddings={config.model.max_position_embeddings}",
          config.seq_len)

  model = config.model
  require(model.hidden_size % model.num_heads == 0, "model.num_heads",
          f"a divisor of model.hidden_size={model.hidden_size}", model.num_heads)
  require(model.dtype in _DTYPES, "model.dtype", f"one of {_DTYPES}", model.dtype)
  require(model.param_dtype in _DTYPES, "model.param_dtype", f"one of {_DTYPES}",
          model.param_dtype)
  require(model.attention_implementation in (None, "xla", "cudnn"),
          "model.attention_implementation", "None, 'xla' or 'cudnn'",
          model.attention_implementation)
  for key in ("dropout_rate", "attention_dropout_rate", "generator.dropout_rate",
              "generator.attention_dropout_rate"):
    require(0.0 <= _lookup(model, key) < 1.0, f"model.{key}", "in [0, 1)", _lookup(model, key))
  if model.attention_implementation == "cudnn":
    for key in ("attention_dropout_rate", "generator.attention_dropout_rate"):
      require(_lookup(model, key) == 0.0, f"model.{key}",
              "0 with attention_implementation='cudnn' (jax's cuDNN attention has no dropout)",
              _lookup(model, key))
  require(model.relative_position_buckets >= 0, "model.relative_position_buckets",
          "0 (off) or more", model.relative_position_buckets)
  if model.relative_position_buckets:
    require(model.relative_position_buckets % 2 == 0 and model.relative_position_buckets >= 4,
            "model.relative_position_buckets", "an even number >= 4",
            model.relative_position_buckets)
    functions = tuple(transformer.BUCKET_FUNCTIONS)
    require(model.relative_position_bucket_function in functions,
            "model.relative_position_bucket_function", f"one of {functions}",
            model.relative_position_bucket_function)
    # The authors' log base is (max_distance - 1) / exact: it must exceed 1.
    minimum = model.relative_position_buckets // 4 + (
        1 if model.relative_position_bucket_function == "amos" else 0)
    require(model.relative_position_max_distance > minimum,
            "model.relative_position_max_distance",
            f"larger than {minimum} for {model.relative_position_buckets} "
            f"{model.relative_position_bucket_function} buckets",
            model.relative_position_max_distance)
  require(model.remat in (True, False), "model.remat", "True or False", model.remat)
  require(model.layer_norm_eps > 0, "model.layer_norm_eps", "> 0", model.layer_norm_eps)
  for key in ("type_vocab_size", "embedding_size"):
    require(isinstance(_lookup(model, key), int) and _lookup(model, key) >= 0, f"model.{key}",
            "0 (none) or a positive integer", _lookup(model, key))
  for key in ("pad_token_id", "sep_token_id"):
    require(isinstance(_lookup(model, key), int) and 0 <= _lookup(model, key) < model.vocab_size,
            f"model.{key}", f"an id below model.vocab_size={model.vocab_size}",
            _lookup(model, key))
  require(model.classifier_activation in classifier.ACTIVATIONS, "model.classifier_activation",
          f"one of {tuple(classifier.ACTIVATIONS)}", model.classifier_activation)
  depths = list(model.generator.mlm_layers)
  require(len(depths) > 0 and all(isinstance(d, int) and d > 0 for d in depths)
          and len(set(depths)) == len(depths), "model.generator.mlm_layers",
          "distinct positive block depths", depths)

  objective = config.objective
  require(0.0 < objective.mask_prob < 1.0, "objective.mask_prob", "in (0, 1)",
          objective.mask_prob)
  require(objective.mixture in ("learned", "uniform"), "objective.mixture",
          "'learned' or 'uniform'", objective.mixture)
  require(objective.temperature > 0, "objective.temperature", "> 0", objective.temperature)
  require(objective.disc_weight >= 0, "objective.disc_weight", ">= 0", objective.disc_weight)

  optimizer = config.optimizer
  require(optimizer.learning_rate > 0, "optimizer.learning_rate", "> 0",
          optimizer.learning_rate)
  require(optimizer.warmup_steps >= 0, "optimizer.warmup_steps", ">= 0",
          optimizer.warmup_steps)
  require(optimizer.grad_clip_norm > 0, "optimizer.grad_clip_norm", "> 0",
          optimizer.grad_clip_norm)
  require(optimizer.position_bias_lr_multiplier > 0, "optimizer.position_bias_lr_multiplier",
          "> 0", optimizer.position_bias_lr_multiplier)


def _lookup(config, dotted: str):
  value = config
  for part in dotted.split("."):
    value = value[part]
  return value
