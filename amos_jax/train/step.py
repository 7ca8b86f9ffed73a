"""One jitted, data-parallel AMOS train step (pmap semantics through jax.shard_map).

Each device runs `train_step` on its slice of the global batch; gradients and metrics are
summed over the `data` mesh axis. The state is a global array, replicated, or with the
optimizer's moments split over `data` (config.shard_optimizer_state); either way checkpoints
do not depend on the device count.

RNG: key = fold_in(seed_key, step), then one stream per purpose; masking, Gumbel noise and
dropout fold in each example's global index in the batch, so a global batch gets the same
masks, samples and dropped units on any number of devices or hosts and with any gradient
accumulation, and a resumed run continues the same streams.
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from amos_jax import objective
from amos_jax import special_tokens
from amos_jax.models.amos import AmosModel
from amos_jax.train import optimizer as optimizer_lib
from amos_jax.train.state import TrainState

DATA_AXIS = "data"


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over all (global) devices, in process-major order."""
  devices = jax.devices() if devices is None else devices
  return jax.sharding.Mesh(devices, (DATA_AXIS,),
                           axis_types=(jax.sharding.AxisType.Explicit,))


def step_keys(seed_key, step):
  """Per-step keys for masking, Gumbel sampling and dropout."""
  mask_key, sample_key, dropout_key = jax.random.split(jax.random.fold_in(seed_key, step), 3)
  return mask_key, sample_key, dropout_key


# XLA:CPU runs the AMOS step fastest on micro-batches of about this many tokens: the small
# preset (128 x 128, 2-core Zen 5) reaches 34% MFU unsplit, 54% in 16-row and 56-57% in
# 4-row micro-batches, and 53% in 2-row ones; the tiny preset is fastest at 4-8 rows of 64.
CPU_MICRO_BATCH_TOKENS = 512


def automatic_accumulation_steps(local_rows: int, seq_len: int, platform: str) -> int:
  """config.gradient_accumulation_steps = 0: one micro-batch on accelerators; on CPU the
  largest micro-batches of at most CPU_MICRO_BATCH_TOKENS tokens that divide the rows."""
  if platform != "cpu":
    return 1
  max_rows = max(1, CPU_MICRO_BATCH_TOKENS // seq_len)
  rows = max(r for r in range(1, min(max_rows, local_rows) + 1) if local_rows % r == 0)
  return local_rows // rows


def accumulation_steps(config: ml_collections.ConfigDict, local_rows: int, platform: str) -> int:
  """Micro-batches per step: config.gradient_accumulation_steps, or the automatic choice."""
  return (config.gradient_accumulation_steps
          or automatic_accumulation_steps(local_rows, config.seq_len, platform))


def per_example_keys(key, global_indices_B):
  return jax.vmap(lambda index: jax.random.fold_in(key, index))(global_indices_B)


def global_example_indices(local_batch: int):
  return jax.lax.axis_index(DATA_AXIS) * local_batch + jnp.arange(local_batch)


def global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32)))
                      for x in jax.tree_util.tree_leaves(tree)))


def _accumulated_grads(grad_fn, params, per_example, dropout_key, steps: int):
  """Sums (gradients, metrics) over `steps` equal micro-batches of the local batch.

  `per_example` holds the arrays with one row per example (the masked batch, the sample
  keys, the global example ids); they are split along that axis. Losses are already
  normalised by the global counts of the whole batch, so the sum equals the full-batch
  gradient exactly (up to float rounding) while holding one micro-batch of activations at a
  time; dropout masks depend on the example ids, not on the micro-batch.
  """
  if steps == 1:
    (_, metrics), grads = grad_fn(params, *per_example, dropout_key)
    return grads, metrics
  split = lambda x: x.reshape((steps, x.shape[0] // steps) + x.shape[1:])
  micro_batches = jax.tree_util.tree_map(split, per_example)

  def add_micro_batch(totals, micro_batch):
    (_, metrics), grads = grad_fn(params, *micro_batch, dropout_key)
    return jax.tree_util.tree_map(jnp.add, totals, (grads, metrics)), None

  first = jax.tree_util.tree_map(lambda x: x[0], micro_batches)
  (_, metrics_shape), grads_shape = jax.eval_shape(grad_fn, params, *first, dropout_key)
  zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                 (grads_shape, metrics_shape))
  zeros = jax.lax.pcast(zeros, DATA_AXIS, to="varying")
  (grads, metrics), _ = jax.lax.scan(add_micro_batch, zeros, micro_batches)
  return grads, metrics


def local_gradients(params, step, batch, seed_key, *, model: AmosModel,
                    config: ml_collections.ConfigDict, platform: str,
                    special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX):
  """Per-device body: mask, forward, backward: (gradients, metrics) of this device's rows,
  to be summed over the devices.

  Args:
    params: the replicated parameters; step: the train step (keys fold it in).
    batch: this device's {"input_ids": int32 [B_local, L]}.
    seed_key: the run's base key; folded with the step inside.
    platform: the devices' platform ("cpu", "gpu", "tpu"), for automatic micro-batching.
    special: the data's special ids (prepared.special).
  """
  input_ids = batch["input_ids"]
  example_indices = global_example_indices(input_ids.shape[0])
  mask_key, sample_key, dropout_key = step_keys(seed_key, step)
  masked = objective.mask_tokens(input_ids, per_example_keys(mask_key, example_indices),
                                 config.objective.mask_prob, special)
  counts = jax.lax.psum(objective.local_counts(masked), DATA_AXIS)

  def grad_fn(params, micro_batch, sample_keys_B, example_ids_B, dropout_key):
    return jax.value_and_grad(objective.loss_fn, has_aux=True)(
        params, model, config.objective, micro_batch, sample_keys_B, dropout_key, counts,
        False, example_ids_B)

  # Differentiate w.r.t. a per-device copy of the params so that the cross-device sum below is
  # the only reduction (pmap semantics), instead of one inserted implicitly by shard_map.
  local_params = jax.lax.pcast(params, DATA_AXIS, to="varying")
  per_example = (masked, per_example_keys(sample_key, example_indices), example_indices)
  grads, metrics = _accumulated_grads(
      grad_fn, local_params, per_example, dropout_key,
      accumulation_steps(config, input_ids.shape[0], platform))
  return grads, metrics


def apply_gradients(state: TrainState, grads, metrics, *,
                    optimizer: optax.GradientTransformation, learning_rate_fn):
  """The optimizer's update of the summed gradients; the step's metrics."""
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params, step=state.step)
  params = optax.apply_updates(state.params, updates)
  metrics.update({
      "grad_norm": global_norm(grads),
      "param_norm": global_norm(params),
      "learning_rate": learning_rate_fn(state.step),
      **optimizer_lib.nonfinite_counts(opt_state),
  })
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics


def train_step(state: TrainState, batch, seed_key, *, model: AmosModel,
               config: ml_collections.ConfigDict, optimizer: optax.GradientTransformation,
               learning_rate_fn, platform: str,
               special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX):
  """Per-device body of the replicated step: `local_gradients` summed over the devices,
  then every device applies the same update to its whole copy of the state."""
  grads, metrics = jax.lax.psum(
      local_gradients(state.params, state.step, batch, seed_key, model=model, config=config,
                      platform=platform, special=special), DATA_AXIS)
  return apply_gradients(state, grads, metrics, optimizer=optimizer,
                         learning_rate_fn=learning_rate_fn)


def optimizer_state_spec(shape, num_devices: int) -> P:
  """A leaf of the sharded optimizer state: split over `data` along its first axis that
  the device count divides; replicated when none does (biases of odd sizes, scalars)."""
  for axis, size in enumerate(shape):
    if size % num_devices == 0:
      return P(*(None,) * axis, DATA_AXIS)
  return P()


def state_shardings(state, mesh: jax.sharding.Mesh, shard_optimizer_state: bool):
  """NamedShardings of a TrainState (arrays or shapes): all replicated, or with the
  optimizer's moments split over the devices (config.shard_optimizer_state)."""
  replicated = NamedSharding(mesh, P())
  shardings = jax.tree_util.tree_map(lambda _: replicated, state)
  if not shard_optimizer_state:
    return shardings
  opt_state = jax.tree_util.tree_map(
      lambda leaf: NamedSharding(mesh, optimizer_state_spec(leaf.shape, mesh.size)),
      state.opt_state)
  return shardings.replace(opt_state=opt_state)


def make_train_step(model: AmosModel, config: ml_collections.ConfigDict,
                    optimizer: optax.GradientTransformation, learning_rate_fn,
                    mesh: jax.sharding.Mesh,
                    special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX):
  """jit(shard_map(train_step)) with the state donated: (state, batch, key) -> (state, metrics).

  The batch must be a global array sharded over the mesh's data axis (`shard_batch`).
  With config.shard_optimizer_state (ZeRO stage 1), the gradients are reduce-scattered
  instead of summed whole, the update runs on global arrays, where each device computes
  its part of the split moments (`state_shardings`), and the new parameters are gathered
  whole onto every device: the moments' memory divided by the device count, for the same
  traffic (a reduce-scatter and an all-gather make an all-reduce).
  """
  platform = mesh.devices.flat[0].platform
  if not config.get("shard_optimizer_state", False):
    body = functools.partial(train_step, model=model, config=config, optimizer=optimizer,
                             learning_rate_fn=learning_rate_fn, platform=platform,
                             special=special)
    sharded = jax.shard_map(body, mesh=mesh, in_specs=(P(), P(DATA_AXIS), P()),
                            out_specs=(P(), P()))
    return jax.jit(sharded, donate_argnums=0)

  def summed_gradient_shards(params, step, batch, seed_key):
    """Each device's part of the summed gradients, split like the moments (a
    reduce-scatter, which with the parameters' all-gather costs one all-reduce)."""
    grads, metrics = local_gradients(params, step, batch, seed_key, model=model,
                                     config=config, platform=platform, special=special)

    def sum_shard(grad):
      spec = optimizer_state_spec(grad.shape, mesh.size)
      if not spec:
        return jax.lax.psum(grad, DATA_AXIS)
      return jax.lax.psum_scatter(grad, DATA_AXIS, scatter_dimension=len(spec) - 1,
                                  tiled=True)

    return jax.tree_util.tree_map(sum_shard, grads), jax.lax.psum(metrics, DATA_AXIS)

  def step_with_sharded_optimizer(state, batch, seed_key):
    # A state laid out otherwise (replicated moments, say) is split here, once: the
    # optimizer's branches (apply_if_finite) must see the moments as the update makes them.
    state = jax.sharding.reshard(state, state_shardings(state, mesh, True))
    grad_specs = jax.tree_util.tree_map(
        lambda leaf: optimizer_state_spec(leaf.shape, mesh.size), state.params)
    grads, metrics = jax.shard_map(
        summed_gradient_shards, mesh=mesh, in_specs=(P(), P(), P(DATA_AXIS), P()),
        out_specs=(grad_specs, P()))(state.params, state.step, batch, seed_key)
    # The update of a split gradient and moment is split; adding it to the replicated
    # parameters too: the new state goes back to the shardings it came in.
    state, metrics = apply_gradients(state, grads, metrics, optimizer=optimizer,
                                     learning_rate_fn=learning_rate_fn)
    return jax.sharding.reshard(state, state_shardings(state, mesh, True)), metrics

  return jax.jit(step_with_sharded_optimizer, donate_argnums=0)


def replicate(tree, mesh: jax.sharding.Mesh):
  """Places a pytree as a fully replicated global array on the mesh."""
  return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(local_batch, mesh: jax.sharding.Mesh):
  """This host's rows of the global batch -> one global array sharded over `data`."""
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)
