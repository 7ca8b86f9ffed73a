"""Pretraining that continues from an existing encoder: `config.init_checkpoint`.

Any checkpoint amos_jax reads (formats/registry.py) gives the discriminator: an amos_jax
export or workdir, the AMOS/COCO-LM authors' checkpoints, BERT or ELECTRA. The run takes its
architecture and vocabulary (every model key but the dropout rates and the compute settings),
prepares the data with its tokenizer, so that the ids and special tokens are the encoder's,
and starts from its token embedding and discriminator; the generator, the mixture vector and
the detection head are initialised as in any run, with the encoder's width. A resumed run
reads its own checkpoint and ignores init_checkpoint.
"""

import logging

import jax
import ml_collections
import numpy as np

from amos_jax import errors
from amos_jax.formats import encoder_tree
from amos_jax.formats import loaded
from amos_jax.formats import registry
from amos_jax.models import amos

# Model keys the run keeps from its own config: how it trains and computes, not what the
# encoder is.
RUN_KEYS = ("dropout_rate", "attention_dropout_rate", "dtype", "param_dtype",
            "attention_implementation", "generator")


def configure(config: ml_collections.ConfigDict) -> loaded.Checkpoint | None:
  """Reads config.init_checkpoint's model config and tokenizer (if set; its weights only when
  `apply` needs them) and gives config.model its architecture."""
  if not config.init_checkpoint:
    return None
  checkpoint = registry.load(config.init_checkpoint, read_params=False)
  model = amos.with_architecture_defaults(checkpoint.model_config)
  encoder = {key: value for key, value in model.to_dict().items() if key not in RUN_KEYS}
  changed = {key: (config.model.get(key), value) for key, value in encoder.items()
             if config.model.get(key) != value}
  with config.unlocked():
    config.model.update(encoder)
  logging.info("Pretraining continues from %s; model keys taken from it: %s.",
               registry.describe(checkpoint),
               ", ".join(f"{key} {old} -> {new}" for key, (old, new) in sorted(changed.items()))
               or "none changed")
  return checkpoint


def check_data(checkpoint: loaded.Checkpoint, prepared) -> None:
  """The prepared rows must use the checkpoint's vocabulary."""
  if prepared.metadata["tokenizer"]["vocab_sha256"] != checkpoint.tokenizer.vocab_sha256():
    raise errors.InputError(
        f"{prepared.directory} was prepared with another tokenizer than init_checkpoint "
        f"{checkpoint.path}'s: set data.prepared_dir to a new directory.")


def apply(state, checkpoint: loaded.Checkpoint):
  """`state` with its token embedding and discriminator replaced by the checkpoint's weights,
  read now (a resumed run never reads them); the optimizer's moments are zeros either way."""
  params = dict(state.params)
  encoder = registry.load(checkpoint.path, read_params=True).encoder_params
  for name in amos.ENCODER_PARAMS:
    expected = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, np.float32), params[name])
    given = jax.tree.map(lambda x: np.asarray(x, np.float32), encoder[name])
    encoder_tree.check_param_tree({name: given}, {name: expected}, checkpoint.path,
                                  against="the pretraining model")
    params[name] = jax.tree.map(
        lambda value, current: jax.device_put(value.astype(current.dtype), current.sharding),
        given, params[name])
  return state.replace(params=params)
