"""What a bad disk, a partial copy or a full filesystem can do to one saved checkpoint."""

import glob
import os


def largest_array_file(step_dir: str) -> str:
  """The biggest TensorStore data file of a checkpoint's train state."""
  return max(glob.glob(os.path.join(step_dir, "state", "ocdbt.process_*", "d", "*")),
             key=os.path.getsize)


def truncate_array_file(step_dir: str):
  path = largest_array_file(step_dir)
  with open(path, "r+b") as file:
    file.truncate(os.path.getsize(path) // 2)


def remove_array_file(step_dir: str):
  os.remove(largest_array_file(step_dir))


def corrupt_metadata(step_dir: str):
  with open(os.path.join(step_dir, "state", "_METADATA"), "w") as file:
    file.write('{"tree_metadata": ')


ALL = [truncate_array_file, remove_array_file, corrupt_metadata]
