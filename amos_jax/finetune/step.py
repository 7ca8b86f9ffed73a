"""Data-parallel fine-tuning and prediction steps for any encoder-plus-head model.

The same pattern as pretraining (amos_jax/train/step.py): jit(shard_map(...)) over the
`data` axis, gradients of a per-device copy of the parameters summed with one explicit psum,
the loss normalised by the global batch size so the device count does not change it. The
model is called as (token_ids, padding_mask, deterministic, example_ids) and the
task supplies only `example_losses(outputs, batch) -> [B_local]`.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import PartitionSpec as P

from amos_jax.models import amos
from amos_jax.train import optimizer as optimizer_lib
from amos_jax.train import step as step_lib
from amos_jax.train.state import TrainState

DATA_AXIS = step_lib.DATA_AXIS


def make_optimizer(optimizer_config, learning_rate: float, num_train_steps: int,
                   warmup_steps: int):
  """AdamW with linear warmup and decay (the authors' recipe: no gradient clipping).

  Returns (optimizer, learning_rate_fn).
  """
  learning_rate_fn = optimizer_lib.learning_rate_schedule(
      ml_collections.ConfigDict(
          dict(learning_rate=learning_rate, warmup_steps=warmup_steps)), num_train_steps)
  optimizer = optax.adamw(learning_rate_fn, b1=optimizer_config.b1, b2=optimizer_config.b2,
                          eps=optimizer_config.eps, weight_decay=optimizer_config.weight_decay,
                          mask=optimizer_lib.weight_decay_mask)
  return optimizer, learning_rate_fn


def _forward(model, params, input_ids_BxL, deterministic, dropout_key=None, example_ids_B=None):
  rngs = None if deterministic else {"dropout": dropout_key}
  pad_id = amos.architecture_option(model.config, "pad_token_id")
  return model.apply({"params": params}, input_ids_BxL, input_ids_BxL != pad_id, deterministic,
                     example_ids_B, rngs=rngs)


def train_step(state: TrainState, batch, dropout_key, *, model, optimizer, learning_rate_fn,
               global_batch_size: int, example_losses):
  """Per-device body: forward with dropout, backward, psum the gradients, AdamW update.

  Args:
    batch: this device's {"input_ids": int32 [B_local, L], and the task's label arrays}.
    dropout_key: the seed's base key; the step is folded in. Each example's dropout masks
      follow from its global index (models/dropout.py), so any device count trains alike.
    example_losses: (model outputs, batch) -> per-example losses [B_local].
  """
  key = jax.random.fold_in(dropout_key, state.step)
  example_ids_B = step_lib.global_example_indices(batch["input_ids"].shape[0])

  def loss_fn(params):
    outputs = _forward(model, params, batch["input_ids"], False, key, example_ids_B)
    return jnp.sum(example_losses(outputs, batch)) / global_batch_size

  # Differentiate a per-device copy so the psum below is the only cross-device reduction.
  local_params = jax.lax.pcast(state.params, DATA_AXIS, to="varying")
  loss, grads = jax.value_and_grad(loss_fn)(local_params)
  loss, grads = jax.lax.psum((loss, grads), DATA_AXIS)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = {"loss": loss, "grad_norm": step_lib.global_norm(grads),
             "learning_rate": learning_rate_fn(state.step)}
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics


def make_train_step(model, optimizer, learning_rate_fn, mesh, global_batch_size: int,
                    example_losses):
  """jit(shard_map(train_step)), state donated: (state, global batch, key) -> (state, metrics)."""
  body = functools.partial(train_step, model=model, optimizer=optimizer,
                           learning_rate_fn=learning_rate_fn,
                           global_batch_size=global_batch_size, example_losses=example_losses)
  sharded = jax.shard_map(body, mesh=mesh, in_specs=(P(), P(DATA_AXIS), P()),
                          out_specs=(P(), P()))
  return jax.jit(sharded, donate_argnums=0)


def make_predict_step(model, mesh):
  """jit(shard_map(forward)): (params, global input_ids [B, L]) -> the model's outputs, each
  batch-leading, without dropout."""
  def predict(params, input_ids_BxL):
    return _forward(model, params, input_ids_BxL, True)
  return jax.jit(jax.shard_map(predict, mesh=mesh, in_specs=(P(), P(DATA_AXIS)),
                               out_specs=P(DATA_AXIS)))
