"""A directory written whole or not at all, by one writer at a time."""

import os
import threading

import pytest

from amos_jax.data import atomic_dir


def _write(directory, files, fail=False):
  with atomic_dir.write_whole(str(directory), complete_marker="done.json",
                              setting="--out") as staging:
    for name in files:
      with open(os.path.join(staging, name), "w") as f:
        f.write(name)
    if fail:
      raise KeyboardInterrupt("killed")


def test_body_that_fails_leaves_nothing(tmp_path):
  with pytest.raises(KeyboardInterrupt):
    _write(tmp_path / "out", ["a.npy", "done.json"], fail=True)
  assert os.listdir(tmp_path) == []


def test_success_appears_whole_and_clears_leftovers(tmp_path):
  (tmp_path / "out.incomplete-killed").mkdir()  # A killed writer's staging directory.
  (tmp_path / "out").mkdir()  # Empty: taken over.
  _write(tmp_path / "out", ["a.npy", "done.json"])
  assert sorted(os.listdir(tmp_path)) == ["out"]
  assert sorted(os.listdir(tmp_path / "out")) == ["a.npy", "done.json"]


def test_foreign_directory_is_refused_and_kept(tmp_path):
  (tmp_path / "out").mkdir()
  (tmp_path / "out" / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="no done.json.*set --out to another"):
    _write(tmp_path / "out", ["done.json"])
  assert os.listdir(tmp_path / "out") == ["notes.txt"]


def test_second_holder_waits_for_the_first(tmp_path):
  lock = str(tmp_path / "out.lock")
  acquired = threading.Event()

  def second():
    with atomic_dir.exclusive_lock(lock):
      acquired.set()

  with atomic_dir.exclusive_lock(lock):
    thread = threading.Thread(target=second)
    thread.start()
    assert not acquired.wait(0.5)  # flock: each open() is its own holder, threads too.
  assert acquired.wait(10)
  thread.join()
