"""Assembles model, optimizer, mesh and the jitted train step from a config."""

from typing import Callable, NamedTuple

import jax
import ml_collections
import optax

from amos_jax import special_tokens
from amos_jax.models.amos import AmosModel, init_params
from amos_jax.train import optimizer as optimizer_lib
from amos_jax.train import step as step_lib
from amos_jax.train.state import TrainState, create_train_state


class Pretraining(NamedTuple):
  model: AmosModel
  optimizer: optax.GradientTransformation
  learning_rate_fn: Callable
  mesh: jax.sharding.Mesh
  train_step: Callable  # (state, global batch, seed key) -> (state, metrics)


def build(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh | None = None,
          special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX):
  """Everything needed to run AMOS pretraining steps for `config` on `mesh` (all devices),
  on data with the `special` ids (prepared.special)."""
  mesh = mesh or step_lib.make_mesh()
  model = AmosModel(config.model)
  learning_rate_fn = optimizer_lib.learning_rate_schedule(config.optimizer,
                                                          config.num_train_steps)
  optimizer = optimizer_lib.make_optimizer(config.optimizer, config.num_train_steps)
  train_step = step_lib.make_train_step(model, config, optimizer, learning_rate_fn, mesh,
                                        special)
  return Pretraining(model, optimizer, learning_rate_fn, mesh, train_step)


def _init_fn(pretraining: Pretraining, config: ml_collections.ConfigDict):
  def init(key):
    params = init_params(pretraining.model, key, config.seq_len)
    return create_train_state(params, pretraining.optimizer)
  return init


def initial_state(pretraining: Pretraining, config: ml_collections.ConfigDict) -> TrainState:
  """A fresh TrainState, initialised on device from the config's seed, laid out as
  `abstract_state` says."""
  shardings = jax.tree_util.tree_map(lambda leaf: leaf.sharding,
                                     abstract_state(pretraining, config))
  return jax.jit(_init_fn(pretraining, config), out_shardings=shardings)(init_key(config))


def abstract_state(pretraining: Pretraining, config: ml_collections.ConfigDict) -> TrainState:
  """Shapes, dtypes and shardings of the TrainState, without allocating it: replicated, or
  with the optimizer's moments split over the devices when config.shard_optimizer_state
  (train/step.py)."""
  shapes = jax.eval_shape(_init_fn(pretraining, config), init_key(config))
  shardings = step_lib.state_shardings(shapes, pretraining.mesh,
                                       config.get("shard_optimizer_state", False))
  return jax.tree_util.tree_map(
      lambda s, sharding: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes,
      shardings)


def init_key(config):
  return jax.random.fold_in(jax.random.key(config.seed), 0)


def step_seed_key(config):
  """The base key the train step folds the step into (independent of the init key)."""
  return jax.random.fold_in(jax.random.key(config.seed), 1)
