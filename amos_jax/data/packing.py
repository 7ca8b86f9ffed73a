"""Packs a split's token stream into [CLS] + body + [SEP] rows and writes them as .npy shards.

Documents (each followed by [SEP]) are concatenated into one stream; every row takes the
next seq_len - 2 stream tokens, so there is no padding anywhere and a document may span
rows. Tokens that do not fill a last row are carried to the next call and, at the end,
dropped and counted.
"""

import itertools
import os

import numpy as np

from amos_jax import special_tokens


class ShardedRowWriter:
  """Packs one split's documents into rows; writes shards of `shard_rows` rows to `directory`."""

  def __init__(self, split: str, seq_len: int, shard_rows: int, directory: str):
    self.split, self.seq_len, self.shard_rows = split, seq_len, shard_rows
    self.directory = directory
    self.carry = np.zeros([0], np.int32)  # Stream tokens not yet in a full row.
    self.pending: list[np.ndarray] = []  # Full rows not yet in a shard.
    self.pending_rows = 0
    self.shard_files: list[tuple[str, int]] = []  # (path, rows) per written shard.
    self.rows = 0
    self.documents = 0

  def add(self, docs_ids: list[list[int]]):
    """Appends documents (each followed by [SEP]) to the stream and packs full rows."""
    docs_ids = [d for d in docs_ids if d]
    self.documents += len(docs_ids)
    stream = np.fromiter(
        itertools.chain.from_iterable(itertools.chain(d, (special_tokens.SEP_ID,))
                                      for d in docs_ids), dtype=np.int32)
    stream = np.concatenate([self.carry, stream])
    body = self.seq_len - 2
    n = len(stream) // body
    rows = np.empty([n, self.seq_len], np.int32)
    rows[:, 0] = special_tokens.CLS_ID
    rows[:, 1:-1] = stream[:n * body].reshape(n, body)
    rows[:, -1] = special_tokens.SEP_ID
    self.carry = stream[n * body:]
    if n:
      self.pending.append(rows)
      self.pending_rows += n
    while self.pending_rows >= self.shard_rows:
      self._flush(self.shard_rows)

  def _flush(self, num_rows: int):
    pending = np.concatenate(self.pending)
    shard, rest = pending[:num_rows], pending[num_rows:]
    self.pending, self.pending_rows = ([rest] if len(rest) else []), len(rest)
    path = os.path.join(self.directory, f"{self.split}-{len(self.shard_files):05d}.npy")
    np.save(path, shard)
    self.shard_files.append((path, len(shard)))
    self.rows += len(shard)

  def finish(self) -> list[dict]:
    """Writes the last shard and names every shard `<split>-<i>-of-<n>.npy`; returns
    their [{"file", "rows"}]. The stream tokens dropped at the end stay in `carry`."""
    if self.pending_rows:
      self._flush(self.pending_rows)
    shards = []
    for i, (path, rows) in enumerate(self.shard_files):
      name = f"{self.split}-{i:05d}-of-{len(self.shard_files):05d}.npy"
      os.replace(path, os.path.join(self.directory, name))
      shards.append(dict(file=name, rows=rows))
    return shards
