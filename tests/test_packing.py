"""Row packing: every stream token of a unit lands in exactly one row, in order, however
it is fed."""

import os

import numpy as np

from amos_jax import special_tokens
from amos_jax.data import packing

CLS, SEP = special_tokens.CLS_ID, special_tokens.SEP_ID


def _writer(directory, split, seq_len, shard_rows, unit=0):
  os.makedirs(directory, exist_ok=True)
  return packing.UnitRowWriter(split, unit, seq_len, shard_rows,
                               lambda name: open(os.path.join(directory, name), "wb"))


def _rows(directory, shards):
  return np.concatenate([np.load(os.path.join(directory, s["file"])) for s in shards])


def test_rows_hold_the_stream_in_order(tmp_path):
  writer = _writer(tmp_path, "train", seq_len=5, shard_rows=2, unit=7)
  writer.add([[11, 12, 13, 14, 15], [], [16, 17, 18]])  # The empty document is not one.
  shards = writer.finish()
  # Stream: 11 12 13 | 14 15 SEP | 16 17 18 | SEP (carried, dropped at the end).
  np.testing.assert_array_equal(_rows(tmp_path, shards), [[CLS, 11, 12, 13, SEP],
                                                          [CLS, 14, 15, SEP, SEP],
                                                          [CLS, 16, 17, 18, SEP]])
  assert shards == [dict(file="train-000007-0000.npy", rows=2),
                    dict(file="train-000007-0001.npy", rows=1)]
  assert sorted(os.listdir(tmp_path)) == [s["file"] for s in shards]
  assert (writer.rows, writer.documents, len(writer.carry)) == (3, 2, 1)


def test_chunking_does_not_change_rows(tmp_path):
  rng = np.random.default_rng(0)
  docs = [list(rng.integers(10, 500, rng.integers(1, 40))) for _ in range(60)]
  whole = _writer(tmp_path / "a", "eval", 16, shard_rows=7)
  whole.add(docs)
  chunked = _writer(tmp_path / "b", "eval", 16, shard_rows=3)
  for start in range(0, len(docs), 7):
    chunked.add(docs[start:start + 7])
  rows = _rows(tmp_path / "a", whole.finish())
  np.testing.assert_array_equal(rows, _rows(tmp_path / "b", chunked.finish()))
  stream = np.concatenate([np.append(d, SEP) for d in docs])
  np.testing.assert_array_equal(rows[:, 1:-1].ravel(), stream[:rows.shape[0] * 14])
  assert len(whole.carry) == len(stream) - rows.shape[0] * 14 < 14
  assert (rows[:, 0] == CLS).all() and (rows[:, -1] == SEP).all()
