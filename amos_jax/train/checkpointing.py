"""Checkpoints that survive preemption: orbax CheckpointManager over the whole train state.

Each checkpoint holds the TrainState (model, optimizer, step) and a small JSON record of the
data-stream position. Orbax writes into a temporary directory and renames it only once the
save is complete, so a process killed mid-save (even by SIGKILL) leaves the previous
checkpoint as the newest loadable one and the partial one is ignored.
"""

import logging

import jax
import orbax.checkpoint as ocp

from amos_jax.train.state import TrainState


class Checkpointer:
  """Asynchronous saves every `every_steps`, keeping the newest `keep` checkpoints."""

  def __init__(self, directory: str, every_steps: int, keep: int):
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(
            save_interval_steps=every_steps, max_to_keep=keep, create=True,
            enable_async_checkpointing=True, cleanup_tmp_directories=True),
        item_names=("state", "data"))

  @property
  def directory(self):
    return self._manager.directory

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def restore(self, abstract_state: TrainState, step: int | None = None):
    """(state, data_state) of `step` (default newest), or None when there is none.

    `abstract_state` gives the shapes, dtypes and shardings to restore into.
    """
    step = self._manager.latest_step() if step is None else step
    if step is None:
      return None
    logging.info("Restoring checkpoint %d from %s", step, self._manager.directory)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=ocp.args.JsonRestore()))
    return restored.state, restored.data

  def save(self, step: int, state: TrainState, data_state: dict, force: bool = False) -> bool:
    """Starts an asynchronous save if `step` is due (or `force`); returns whether it did."""
    return self._manager.save(
        step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                      data=ocp.args.JsonSave(data_state)),
        force=force)

  def reached_preemption(self, step: int) -> bool:
    """True on every host once any host got a preemption notice (multi-host sync point)."""
    return self._manager.reached_preemption(step)

  def wait_until_finished(self):
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()



def load_params(directory: str, step: int | None = None):
  """(step, params) of a checkpoint, on this host's first device, whatever the topology
  (device or host count) that saved it; the optimizer state is not read."""
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(read_only=True),
      item_handlers={"state": ocp.PyTreeCheckpointHandler(),
                     "data": ocp.JsonCheckpointHandler()})
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No complete checkpoint in {directory}.")
  metadata = manager.item_metadata(step)["state"].tree
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree_util.tree_map(
      lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
      metadata["params"])
  restore_args = jax.tree_util.tree_map(
      lambda leaf: ocp.ArrayRestoreArgs(sharding=device), target)
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item={"params": target}, restore_args={"params": restore_args}, partial_restore=True)))
  manager.close()
  return step, restored.state["params"]
