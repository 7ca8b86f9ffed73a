"""Checkpoints that survive preemption: orbax CheckpointManager over the whole train state.

Each checkpoint holds the TrainState (model, optimizer, step) and a small JSON record of the
data-stream position. Orbax writes into a temporary directory and renames it only once the
save is complete, so a process killed mid-save (even by SIGKILL) leaves the previous
checkpoint as the newest loadable one and the partial one is ignored. A complete checkpoint
that later cannot be read (a bad disk, a partial copy, a full filesystem) is set aside on
restore, and the run resumes from the next newest readable one.
"""

import logging
import os
import time

import jax
from jax.experimental import multihost_utils
import orbax.checkpoint as ocp

from amos_jax import errors
from amos_jax.train.state import TrainState

# A set-aside checkpoint is renamed to "<step>.unreadable-<unix time>": orbax reads neither a
# step nor a temporary directory (which it would delete) in that name.
UNREADABLE_SUFFIX = ".unreadable-"


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
    """(state, data_state) of `step`, by default of the newest readable checkpoint; None
    when there is none.

    `abstract_state` gives the shapes, dtypes and shardings to restore into. Newer
    checkpoints that cannot be read are set aside (renamed, never deleted) with a warning,
    but only once an older one has been read: when none can be, the cause may as well be a
    config that no longer matches them, so they are left as they are and InputError says
    why each failed. Every host must see the same files.
    """
    if step is not None:
      return self._restore(step, abstract_state)
    failures = []
    for candidate in sorted(self._manager.all_steps(), reverse=True):
      try:
        restored = self._restore(candidate, abstract_state)
      except Exception as error:  # pylint: disable=broad-except
        # Orbax and TensorStore raise many types (ValueError, JSONDecodeError, Exception)
        # for a truncated, missing or corrupt file.
        failures.append((candidate, _describe(error)))
        continue
      for failed, reason in failures:
        self._set_aside(failed, reason, candidate)
      return restored
    if failures:
      raise errors.InputError(
          f"No checkpoint in {self.directory} can be read: "
          + "; ".join(f"step {s}: {reason}" for s, reason in failures)
          + ". If the config changed since they were written, restore it; otherwise move "
          "the damaged checkpoints away.")
    return None

  def _restore(self, step: int, abstract_state: TrainState):
    logging.info("Restoring checkpoint %d from %s", step, self.directory)
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state),
        data=ocp.args.JsonRestore()))
    return restored.state, restored.data

  def _set_aside(self, step: int, reason: str, resumed_from: int):
    """Renames an unreadable checkpoint out of orbax's sight (process 0; all hosts wait)."""
    path = os.path.join(self.directory, str(step))
    aside = f"{path}{UNREADABLE_SUFFIX}{int(time.time())}"
    if jax.process_index() == 0:
      os.rename(path, aside)
    logging.warning("Checkpoint step %d (%s) cannot be read: %s. Set it aside as %s and "
                    "resumed from step %d.", step, path, reason, aside, resumed_from)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"set aside checkpoint {step}")
    self._manager.reload()

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
      # What read_only implies, given, so orbax does not warn that it changed them.
      directory, options=ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0,
                                                       create=False),
      item_handlers={"state": ocp.PyTreeCheckpointHandler(),
                     "data": ocp.JsonCheckpointHandler()})
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"No complete checkpoint in {directory}.")
  if step not in manager.all_steps():
    raise FileNotFoundError(f"No checkpoint of step {step} in {directory}; it holds steps "
                            f"{sorted(manager.all_steps())}.")
  try:
    metadata = manager.item_metadata(step)["state"].tree
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree_util.tree_map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=device),
        metadata["params"])
    restore_args = jax.tree_util.tree_map(
        lambda leaf: ocp.ArrayRestoreArgs(sharding=device), target)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item={"params": target}, restore_args={"params": restore_args}, partial_restore=True)))
  except Exception as error:  # pylint: disable=broad-except
    # As in Checkpointer.restore: many types mean a damaged file.
    raise errors.InputError(
        f"Checkpoint step {step} in {directory} cannot be read: {_describe(error)}. It holds "
        f"steps {sorted(manager.all_steps())}.") from error
  finally:
    manager.close()
  return step, restored.state["params"]


def _describe(error: BaseException) -> str:
  """The root cause of a restore error on one line: TensorStore's names the file; orbax's
  wrapper around it dumps a whole TensorStore spec."""
  while error.__cause__ is not None:
    error = error.__cause__
  text = " ".join(str(error).split())
  return f"{type(error).__name__}: {text[:400]}"
