"""Work units: the corpus cut into fixed pieces, each tokenized, split and packed alone.

Both drivers plan the same units and call `prepare_unit` on each: prepare.py one after the
other in one process, beam_prepare.py on Apache Beam's workers. A unit's shard files and
record depend on the unit alone (the tokenizer and settings being fixed), and the
metadata lists them in unit order, so the prepared directory is the same bytes whatever
runs the units, how many at once and in which order. A unit is

  - `unit_mb` of a plain text file (a byte range; sources.range_documents finds the
    documents that begin in it, wherever the cut falls),
  - a whole .gz file (a gzip stream cannot be read from the middle: split big ones),
  - a range of examples of a TFDS split, about `unit_mb` of serialized examples.

Its memory is bounded whatever its size: documents are read and tokenized in chunks and
rows leave in shards of at most `shard_mb`. The price of independent units: a unit's last
tokens that do not fill a row are dropped, on average half a row per split per unit
(metadata's dropped_tail_tokens; docs/beam.md gives the share on a real corpus).
"""

import dataclasses
import itertools
import math
import zlib
from typing import BinaryIO, Callable, Iterator

from amos_jax.data import packing
from amos_jax.data import sources
from amos_jax.data.prepared import SPLITS

# Documents tokenized per call; large enough to keep the tokenizer threads busy.
_CHUNK_DOCS = 2048
# TFDS examples per unit when the split does not record its size in bytes.
_DEFAULT_TFDS_UNIT_EXAMPLES = 10_000

Opener = Callable[[str], BinaryIO]


@dataclasses.dataclass(frozen=True)
class Unit:
  """One piece of the corpus: bytes [start, end) of text file `path` (end None: to the end
  of the file), or examples [start, end) of the TFDS split when `path` is empty."""
  index: int
  path: str
  start: int
  end: int | None


def plan_text(files: list[tuple[str, int]], unit_mb: float) -> list[Unit]:
  """The units of text files given as (path, size in bytes), in the files' order."""
  unit_bytes = max(1, int(unit_mb * (1 << 20)))
  ranges = []
  for path, size in files:
    count = 1 if path.endswith(".gz") else max(1, math.ceil(size / unit_bytes))
    ranges += [(path, k * unit_bytes, (k + 1) * unit_bytes if k + 1 < count else None)
               for k in range(count)]
  return [Unit(index, *r) for index, r in enumerate(ranges)]


def plan_tfds(data_config) -> list[Unit]:
  """The units of the TFDS split data_config names: ranges of its examples."""
  examples, size = sources.tfds_split_sizes(data_config.tfds_name, data_config.tfds_split,
                                            data_config.tfds_data_dir)
  per_unit = _DEFAULT_TFDS_UNIT_EXAMPLES
  if size and examples:
    per_unit = max(1, round(data_config.unit_mb * (1 << 20) * examples / size))
  return [Unit(i, "", start, min(start + per_unit, examples))
          for i, start in enumerate(range(0, max(examples, 1), per_unit))]


def documents(unit: Unit, data_config, stats: sources.SourceStats,
              open_binary: Opener) -> Iterator[str]:
  """The documents of `unit`, in order; `open_binary(path)` opens a text file for reading."""
  if not unit.path:
    yield from sources.tfds_documents(
        data_config.tfds_name, f"{data_config.tfds_split}[{unit.start}:{unit.end}]",
        data_config.tfds_data_dir, data_config.tfds_text_key, stats)
    return
  with open_binary(unit.path) as raw, sources.open_text(unit.path, raw) as f, \
      sources.gzip_errors(unit.path):
    yield from sources.range_documents(f, unit.start, unit.end, data_config.document_split,
                                       data_config.max_line_bytes, stats)


def tokenizer_sample(units: list[Unit], data_config, stats: sources.SourceStats,
                     open_binary: Opener) -> Iterator[str]:
  """The lines the tokenizer is trained on: the first tokenizer_train_lines // len(units)
  non-blank lines of every unit. A fixed sample spread over the whole corpus, read without
  a pass over it (160 GB would take hours on the one machine that trains the tokenizer);
  a corpus of a single unit gives all its lines up to the limit."""
  per_unit = max(1, data_config.tokenizer_train_lines // len(units))
  for unit in units:
    unit_lines = (line for document in documents(unit, data_config, stats, open_binary)
                  for line in document.split("\n") if line.strip())
    yield from itertools.islice(unit_lines, per_unit)
    unit_lines.close()  # Closes the unit's file now, not when collected.


def is_eval(text: str, eval_fraction: float) -> bool:
  """Whether a document is held out: by the hash of its text, so duplicates share a split."""
  return zlib.crc32(text.encode("utf-8")) < eval_fraction * 2**32


def prepare_unit(unit: Unit, data_config, tokenizer, *, seq_len: int, shard_rows: int,
                 num_threads: int, open_binary: Opener,
                 create: Callable[[str], BinaryIO]) -> dict:
  """Tokenizes, splits and packs `unit`; writes its shards through `create(name)`.

  Returns the unit's record (JSON-able): its shards and counts per split, its tokens and
  what was read and skipped. Bad input raises errors.InputError naming the file.
  """
  stats = sources.SourceStats()
  writers = {split: packing.UnitRowWriter(split, unit.index, seq_len, shard_rows, create,
                                          tokenizer.special)
             for split in SPLITS}
  tokens = 0
  unit_documents = documents(unit, data_config, stats, open_binary)
  while chunk := list(itertools.islice(unit_documents, _CHUNK_DOCS)):
    ids = tokenizer.encode_batch(chunk, num_threads=num_threads)
    tokens += sum(map(len, ids))
    held_out = [is_eval(text, data_config.eval_fraction) for text in chunk]
    writers["train"].add([d for d, e in zip(ids, held_out) if not e])
    writers["eval"].add([d for d, e in zip(ids, held_out) if e])
  splits = {split: dict(shards=writer.finish(), rows=writer.rows, documents=writer.documents,
                        dropped_tail_tokens=len(writer.carry))
            for split, writer in writers.items()}
  return dict(unit=unit.index, splits=splits, tokens=tokens, stats=dataclasses.asdict(stats))


def combine(records: list[dict], files: int) -> tuple[dict, dict]:
  """The metadata's `splits` and `counts` from every unit's record, in unit order; `files`
  is the number of input files (1 for a TFDS split)."""
  splits = {}
  for split in SPLITS:
    parts = [record["splits"][split] for record in records]
    splits[split] = dict(rows=sum(p["rows"] for p in parts),
                         documents=sum(p["documents"] for p in parts),
                         dropped_tail_tokens=sum(p["dropped_tail_tokens"] for p in parts),
                         shards=[shard for p in parts for shard in p["shards"]])
  stats = {key: sum(record["stats"][key] for record in records)
           for key in dataclasses.asdict(sources.SourceStats())}
  counts = dict(tokens=sum(record["tokens"] for record in records), **stats,
                units=len(records))
  counts["files"] = files
  return splits, counts
