"""Packs one work unit's token stream into [CLS] + body + [SEP] rows, written as .npy shards.

[CLS] and [SEP] are the tokenizer's (`special`): amos_jax's own ids, or a converted
checkpoint's when pretraining continues from one.

A unit's documents (each followed by [SEP]) are concatenated into one stream; every row
takes the next seq_len - 2 stream tokens, so there is no padding anywhere and a document
may span rows. Tokens that do not fill a last row are carried to the next call and, when
the unit ends, dropped and counted: packing never crosses a unit's end, so a unit's rows
depend on the unit alone (work_units.py says why).
"""

import itertools
from typing import BinaryIO, Callable

import numpy as np

from amos_jax import special_tokens


def shard_name(split: str, unit: int, part: int) -> str:
  """The file of the `part`-th shard of `split` rows from work unit `unit`."""
  return f"{split}-{unit:06d}-{part:04d}.npy"


class UnitRowWriter:
  """Packs one split's documents of one unit into rows; writes a shard per `shard_rows` rows
  through `create(name)`, which opens a new file of the output directory for writing."""

  def __init__(self, split: str, unit: int, seq_len: int, shard_rows: int,
               create: Callable[[str], BinaryIO],
               special: special_tokens.SpecialTokens = special_tokens.AMOS_JAX):
    self.split, self.unit, self.seq_len, self.shard_rows = split, unit, seq_len, shard_rows
    self.create = create
    self.special = special
    self.carry = np.zeros([0], np.int32)  # Stream tokens not yet in a full row.
    self.pending: list[np.ndarray] = []  # Full rows not yet in a shard.
    self.pending_rows = 0
    self.shards: list[dict] = []  # {"file", "rows"} per written shard.
    self.rows = 0
    self.documents = 0

  def add(self, docs_ids: list[list[int]]):
    """Appends documents (each followed by [SEP]) to the stream and packs full rows."""
    docs_ids = [d for d in docs_ids if d]
    self.documents += len(docs_ids)
    stream = np.fromiter(
        itertools.chain.from_iterable(itertools.chain(d, (self.special.sep,))
                                      for d in docs_ids), dtype=np.int32)
    stream = np.concatenate([self.carry, stream])
    body = self.seq_len - 2
    n = len(stream) // body
    rows = np.empty([n, self.seq_len], np.int32)
    rows[:, 0] = self.special.cls
    rows[:, 1:-1] = stream[:n * body].reshape(n, body)
    rows[:, -1] = self.special.sep
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
    name = shard_name(self.split, self.unit, len(self.shards))
    with self.create(name) as f:
      np.save(f, shard)
    self.shards.append(dict(file=name, rows=len(shard)))
    self.rows += len(shard)

  def finish(self) -> list[dict]:
    """Writes the last shard; returns every shard's {"file", "rows"}. The stream tokens
    dropped at the unit's end stay in `carry`."""
    if self.pending_rows:
      self._flush(self.pending_rows)
    return self.shards
