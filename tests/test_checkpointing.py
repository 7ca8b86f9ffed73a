"""Damaged checkpoints: set aside on restore, the next newest readable one used instead."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amos_jax import errors
from amos_jax.train import checkpointing
from tests import checkpoint_damage

TREE = {"params": {"kernel": jnp.arange(4000.0).reshape(40, 100), "bias": jnp.ones(7)},
        "step": jnp.int32(0)}


def saved_steps(directory, steps=(1, 2, 3)):
  """Checkpoints of TREE + step for each step."""
  checkpointer = checkpointing.Checkpointer(directory, 1, len(steps))
  for step in steps:
    checkpointer.save(step, jax.tree.map(lambda x: x + step, TREE), {"step": step}, force=True)
  checkpointer.wait_until_finished()
  checkpointer.close()


def abstract_tree():
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), TREE)


@pytest.mark.parametrize("damage", checkpoint_damage.ALL)
def test_an_unreadable_newest_checkpoint_is_set_aside_and_the_previous_restored(
    tmp_path, damage, caplog):
  directory = str(tmp_path / "checkpoints")
  saved_steps(directory)
  damage(os.path.join(directory, "3"))
  checkpointer = checkpointing.Checkpointer(directory, 1, 3)
  state, data = checkpointer.restore(abstract_tree())
  assert data == {"step": 2}
  np.testing.assert_array_equal(state["params"]["kernel"], TREE["params"]["kernel"] + 2)
  assert checkpointer.latest_step() == 2
  [aside] = [name for name in os.listdir(directory) if not name.isdigit()]
  assert aside.startswith("3" + checkpointing.UNREADABLE_SUFFIX)  # Renamed, not deleted.
  assert os.path.isfile(os.path.join(directory, aside, "state", "_METADATA"))
  [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
               and "cannot be read" in r.getMessage()]
  assert warning.startswith(f"Checkpoint step 3 ({directory}/3) cannot be read: ")
  assert "resumed from step 2" in warning
  # The next save of step 3 is a fresh checkpoint beside the one set aside.
  checkpointer.save(3, jax.tree.map(lambda x: x + 3, TREE), {"step": 3}, force=True)
  checkpointer.wait_until_finished()
  checkpointer.close()
  assert checkpointing.Checkpointer(directory, 1, 3).latest_step() == 3


def test_when_no_checkpoint_can_be_read_nothing_is_renamed_and_the_error_says_why(tmp_path):
  directory = str(tmp_path / "checkpoints")
  saved_steps(directory, steps=(1, 2))
  checkpoint_damage.truncate_array_file(os.path.join(directory, "2"))
  checkpoint_damage.corrupt_metadata(os.path.join(directory, "1"))
  checkpointer = checkpointing.Checkpointer(directory, 1, 3)
  with pytest.raises(errors.InputError, match=f"No checkpoint in {directory} can be read: "
                     r"step 2: ValueError: OUT_OF_RANGE.*; step 1: JSONDecodeError"):
    checkpointer.restore(abstract_tree())
  assert sorted(os.listdir(directory)) == ["1", "2"]


def test_load_params_of_a_damaged_checkpoint_is_an_input_error(tmp_path):
  directory = str(tmp_path / "checkpoints")
  saved_steps(directory, steps=(1, 2))
  checkpoint_damage.truncate_array_file(os.path.join(directory, "2"))
  with pytest.raises(errors.InputError, match=r"Checkpoint step 2 in .* cannot be read: "
                     r"ValueError: OUT_OF_RANGE.* It holds steps \[1, 2\]"):
    checkpointing.load_params(directory)
  step, params = checkpointing.load_params(directory, step=1)
  assert step == 1
  np.testing.assert_array_equal(params["bias"], TREE["params"]["bias"] + 1)


def test_a_checkpoint_of_split_arrays_restores_replicated_and_back(tmp_path):
  """config.shard_optimizer_state can change between runs: a checkpoint holds global
  arrays, restored into whatever shardings the resuming run's state has."""
  mesh = jax.sharding.Mesh(jax.devices(), ("data",))
  split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  kernel = TREE["params"]["kernel"]
  for saved_as, restored_as in ((split, replicated), (replicated, split)):
    directory = str(tmp_path / f"from_{len(saved_as.spec)}")
    checkpointer = checkpointing.Checkpointer(directory, 1, 1)
    checkpointer.save(1, {"kernel": jax.device_put(kernel, saved_as)}, {"step": 1}, force=True)
    checkpointer.wait_until_finished()
    state, _ = checkpointer.restore(
        {"kernel": jax.ShapeDtypeStruct(kernel.shape, kernel.dtype, sharding=restored_as)})
    checkpointer.close()
    assert state["kernel"].sharding == restored_as
    assert state["kernel"].addressable_shards[0].data.shape[0] == (
        5 if restored_as is split else 40)
    np.testing.assert_array_equal(state["kernel"], kernel)
