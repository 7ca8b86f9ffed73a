"""Prepares pretraining data: tokenizer, packed [CLS] ... [SEP] rows in .npy shards, metadata.

python -m amos_jax.data.prepare --config=configs/tiny.py --workdir=/tmp/amos_tiny

Layout of `prepared_dir` (default <workdir>/data):
  tokenizer.model                      the SentencePiece model (travels with checkpoints)
  train-00000-of-00002.npy ...         int32 [rows, seq_len], memory-mappable
  eval-00000-of-00001.npy              held-out documents, same format
  metadata.json                        inputs, counts, shard list

Documents are tokenized, each followed by [SEP], concatenated into one stream per split,
and cut into rows of [CLS] + seq_len-2 stream tokens + [SEP]: no padding anywhere; only the
stream's last partial row is dropped (counted in metadata). A document goes to the eval
split when the hash of its text falls under eval_fraction, so duplicates share a split.

Everything is written in a sibling directory `<prepared_dir>.incomplete-*`, which one
rename turns into `prepared_dir`: an interrupted run leaves no `prepared_dir` at all (the
next run removes its leftovers). Concurrent calls take turns on `<prepared_dir>.lock`.
Re-running with the same inputs is a no-op. Re-running with different inputs (files whose
content changed, another seq_len, vocab size or data setting) is an error naming what
changed: point prepared_dir elsewhere or delete it. Files are identified by their SHA-256;
a file whose size and mtime match the last preparation keeps its recorded hash, so a large
corpus is not re-read on every start, while a copied or touched file is still the same input.
"""

import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import itertools
import json
import os
import shutil
import tempfile
import time
import zlib
from typing import Iterator

from absl import logging
import numpy as np

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.data import sources
from amos_jax.data import tokenizer as tokenizer_lib

FORMAT_VERSION = 2  # 2: text files identified by content hash, not mtime.
METADATA_FILE = "metadata.json"
TOKENIZER_FILE = "tokenizer.model"
SPLITS = ("train", "eval")
_TMP_SUFFIX = ".incomplete-"
# Documents tokenized per call; large enough to keep the tokenizer threads busy.
_CHUNK_DOCS = 2048


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """A complete prepared directory, as described by its metadata.json."""
  directory: str
  metadata: dict

  @property
  def tokenizer_path(self) -> str:
    """The SentencePiece .model file; checkpoints and exports copy it."""
    return os.path.join(self.directory, self.metadata["tokenizer"]["file"])

  @property
  def seq_len(self) -> int:
    """Tokens per row, [CLS] and [SEP] included."""
    return self.metadata["inputs"]["seq_len"]

  @property
  def vocab_size(self) -> int:
    """The tokenizer's vocabulary size (config.model.vocab_size at preparation)."""
    return self.metadata["inputs"]["vocab_size"]

  @property
  def fingerprint(self) -> str:
    """Identifies the rows, not their shard layout: save it beside the step, so a resume
    can check that it reads the same rows (a step means nothing against other data)."""
    content = dict(inputs=self.metadata["inputs"],
                   vocab_sha256=self.metadata["tokenizer"]["vocab_sha256"],
                   rows={split: self.num_rows(split) for split in SPLITS})
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

  def num_rows(self, split: str) -> int:
    """Number of packed sequences in `split` ("train" or "eval")."""
    return self.metadata["splits"][split]["rows"]

  def shards(self, split: str) -> list[np.ndarray]:
    """The split's shards as read-only memory maps, checked against the metadata."""
    arrays = []
    for shard in self.metadata["splits"][split]["shards"]:
      path = os.path.join(self.directory, shard["file"])
      array = np.load(path, mmap_mode="r")
      if array.shape != (shard["rows"], self.seq_len) or array.dtype != np.int32:
        raise errors.InputError(f"Shard {path} is {array.dtype}{list(array.shape)}, metadata says "
                                f"int32[{shard['rows']}, {self.seq_len}]: the prepared data is "
                                "corrupt; delete the directory and prepare again.")
      arrays.append(array)
    return arrays


def load_prepared(directory: str) -> PreparedData:
  """Loads a directory written by `prepare`; an error if it is missing or incomplete."""
  path = os.path.join(directory, METADATA_FILE)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"No {METADATA_FILE} in {directory!r}: the data was never prepared there or its "
        "preparation did not finish. Run python -m amos_jax.data.prepare.")
  with open(path) as f:
    metadata = json.load(f)
  if metadata.get("format_version") != FORMAT_VERSION:
    raise errors.InputError(f"{path} has format {metadata.get('format_version')}, this code reads "
                            f"{FORMAT_VERSION}: prepare the data again.")
  return PreparedData(directory=os.path.abspath(directory), metadata=metadata)


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _file_stats(paths: list[str], recorded: dict) -> list[list]:
  """[path, size, mtime_ns, sha256] per text file. `recorded` maps path -> (size, mtime_ns,
  sha256) from the last preparation, whose hash is reused while size and mtime are unchanged."""
  stats = []
  for path in map(os.path.abspath, paths):
    stat = os.stat(path)
    size, mtime, known_sha = recorded.get(path, (None, None, None))
    sha = known_sha if (size, mtime) == (stat.st_size, stat.st_mtime_ns) else _sha256(path)
    stats.append([path, stat.st_size, stat.st_mtime_ns, sha])
  return stats


def _recorded_files(metadata: dict) -> dict:
  return {path: (size, mtime, sha) for path, size, mtime, sha in metadata.get("file_stats", [])}


def _inputs(data_config, seq_len: int, vocab_size: int,
            recorded_files: dict) -> tuple[dict, list]:
  """Everything that determines the prepared content (equal inputs mean equal data), and
  the text files' stats: the hash cache of _file_stats."""
  inputs = dict(
      format_version=FORMAT_VERSION, seq_len=seq_len, vocab_size=vocab_size,
      source=data_config.source, eval_fraction=data_config.eval_fraction,
      tokenizer_model_type=data_config.tokenizer_model_type,
      tokenizer_train_lines=data_config.tokenizer_train_lines,
      tokenizer_sha256=(_sha256(data_config.tokenizer_path)
                        if data_config.tokenizer_path else None),
  )
  file_stats = []
  if data_config.source == "text":
    file_stats = _file_stats(sources.resolve_text_files(data_config.text_files),
                             recorded_files)
    inputs.update(
        document_split=data_config.document_split,
        max_line_bytes=data_config.max_line_bytes,
        files=[[path, size, sha] for path, size, _, sha in file_stats])
  else:
    inputs.update(tfds_name=data_config.tfds_name, tfds_split=data_config.tfds_split,
                  tfds_data_dir=data_config.tfds_data_dir,
                  tfds_text_key=data_config.tfds_text_key)
  return inputs, file_stats


class _SplitWriter:
  """Packs one split's token stream into rows and writes them as .npy shards."""

  def __init__(self, split: str, seq_len: int, shard_rows: int, tmp_dir: str):
    self.split, self.seq_len, self.shard_rows, self.tmp_dir = split, seq_len, shard_rows, tmp_dir
    self.carry = np.zeros([0], np.int32)
    self.pending: list[np.ndarray] = []
    self.pending_rows = 0
    self.shard_files: list[tuple[str, int]] = []
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
    path = os.path.join(self.tmp_dir, f"{self.split}-{len(self.shard_files):05d}.npy")
    np.save(path, shard)
    self.shard_files.append((path, len(shard)))
    self.rows += len(shard)

  def finish(self) -> int:
    """Writes the last shard; returns the number of stream tokens dropped at the end."""
    if self.pending_rows:
      self._flush(self.pending_rows)
    return len(self.carry)


def _chunks(iterator: Iterator[str], size: int) -> Iterator[list[str]]:
  while chunk := list(itertools.islice(iterator, size)):
    yield chunk


def _is_eval(text: str, eval_fraction: float) -> bool:
  return zlib.crc32(text.encode("utf-8")) < eval_fraction * 2**32


def _train_lines(data_config, stats: sources.SourceStats) -> Iterator[str]:
  """Lines of every document: what the tokenizer is trained on."""
  for document in sources.documents(data_config, stats):
    yield from document.split("\n")


def _no_text_error(data_config, stats: sources.SourceStats) -> errors.InputError:
  """The error for a source without a single document, naming its files."""
  if data_config.source == "text":
    paths = sources.resolve_text_files(data_config.text_files)
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    where = f"data.text_files: {shown} {'holds' if len(paths) == 1 else 'hold'} no text"
  else:
    where = (f"TFDS dataset {data_config.tfds_name!r} split {data_config.tfds_split!r} holds "
             "no text")
  return errors.InputError(
      f"{where} ({stats.empty_files} empty files, {stats.skipped_non_utf8_lines} lines skipped "
      f"as not UTF-8, {stats.skipped_long_lines} longer than data.max_line_bytes="
      f"{data_config.max_line_bytes}): expected UTF-8 text with at least one non-blank line.")


def _clear_leftovers(directory: str):
  """Removes interrupted runs' temporary directories; refuses a foreign `directory`."""
  for path in glob.glob(glob.escape(directory) + _TMP_SUFFIX + "*"):
    shutil.rmtree(path, ignore_errors=True)
  if os.path.isdir(directory) and os.listdir(directory):
    raise FileExistsError(
        f"{directory} is not empty but has no {METADATA_FILE}, so prepare did not write it "
        "(it writes the directory whole or not at all). Delete it or set "
        "data.prepared_dir to another directory.")


def prepare(data_config, *, seq_len: int, vocab_size: int, workdir: str,
            batch_size: int | None = None) -> PreparedData:
  """Prepares (or finds already prepared) data; see the module docstring.

  Args:
    data_config: the `data` section of the config (configs/default.py, data_config()).
    seq_len: tokens per packed row, [CLS] and [SEP] included.
    vocab_size: config.model.vocab_size; the tokenizer must have exactly this many pieces.
    workdir: prepared_dir defaults to <workdir>/data.
    batch_size: if given, the global batch size: fewer training rows is an error.
  Returns:
    The prepared data.
  """
  if seq_len < 3:
    raise errors.InputError(f"seq_len must be at least 3 ([CLS] x [SEP]), got {seq_len}.")
  if not 0 <= data_config.eval_fraction < 1:
    raise errors.InputError(
        f"data.eval_fraction must be in [0, 1), got {data_config.eval_fraction}.")
  directory = os.path.abspath(data_config.prepared_dir or os.path.join(workdir, "data"))
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  with _exclusive_lock(directory + ".lock"):
    prepared = None
    if os.path.isfile(os.path.join(directory, METADATA_FILE)):
      prepared = load_prepared(directory)
    inputs, file_stats = _inputs(data_config, seq_len, vocab_size,
                                 _recorded_files(prepared.metadata) if prepared else {})
    if prepared:
      old = prepared.metadata["inputs"]
      changed = sorted(k for k in set(old) | set(inputs) if old.get(k) != inputs.get(k))
      if changed:
        details = "; ".join(f"{k}: prepared {old.get(k)!r}, now {inputs.get(k)!r}"
                            for k in changed)
        raise errors.InputError(f"{directory} was prepared from other inputs ({details}). Delete "
                                "it or set data.prepared_dir to a new directory.")
      if file_stats != prepared.metadata.get("file_stats"):
        prepared = _record_file_stats(prepared, file_stats)
      logging.info("Data already prepared in %s; nothing to do.", directory)
    else:
      _clear_leftovers(directory)
      tmp_dir = tempfile.mkdtemp(prefix=os.path.basename(directory) + _TMP_SUFFIX,
                                 dir=os.path.dirname(directory))
      try:
        metadata = _prepare_into(tmp_dir, data_config, inputs, file_stats)
        if os.path.isdir(directory):
          os.rmdir(directory)  # Empty: _clear_leftovers checked.
        os.rename(tmp_dir, directory)  # The commit: all files appear at once.
      finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)  # Only a killed run leaves it behind.
      prepared = PreparedData(directory=directory, metadata=metadata)
      splits, counts = metadata["splits"], metadata["counts"]
      logging.info("Prepared %s: %d train and %d eval rows of %d tokens from %d documents "
                   "(%.1f MB) in %.1fs.", directory, splits["train"]["rows"],
                   splits["eval"]["rows"], seq_len, counts["documents"],
                   counts["text_bytes"] / 1e6, sum(metadata["timing"].values()))
  _check_batch(prepared, batch_size)
  return prepared


def _record_file_stats(prepared: PreparedData, file_stats: list) -> PreparedData:
  """Rewrites metadata.json with the text files' new sizes and mtimes (same content: touched
  or copied files), so that the next start need not hash them again. Only the hash cache
  changes; a directory that cannot be written is left as it is."""
  metadata = dict(prepared.metadata, file_stats=file_stats)
  path = os.path.join(prepared.directory, METADATA_FILE)
  try:
    with open(path + ".tmp", "w") as f:
      json.dump(metadata, f, indent=1)
    os.replace(path + ".tmp", path)  # Readers see the old file or the new one, whole.
  except OSError as error:
    logging.warning("Could not record the text files' new mtimes in %s (%s): they will be "
                    "hashed again at the next start.", path, error)
    return prepared
  return PreparedData(directory=prepared.directory, metadata=metadata)


@contextlib.contextmanager
def _exclusive_lock(path: str):
  """Serializes preparations of one directory (e.g. every host calling prepare): the
  first prepares, the others wait and then find the data ready. The OS drops the lock
  when its holder dies, so a crashed run cannot block the next one."""
  with open(path, "a") as lock_file:
    try:
      fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      logging.info("Waiting for another process holding %s.", path)
      fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock_file, fcntl.LOCK_UN)


def _check_batch(prepared: PreparedData, batch_size: int | None):
  rows = prepared.num_rows("train")
  if batch_size is not None and rows < batch_size:
    raise errors.InputError(
        f"The corpus gives {rows} training sequences of {prepared.seq_len} tokens "
        f"({prepared.metadata['counts']['tokens']} tokens), fewer than one global batch of "
        f"{batch_size}: use more text, a smaller batch_size or a smaller seq_len.")


def _prepare_into(tmp_dir: str, data_config, inputs: dict, file_stats: list) -> dict:
  """Writes tokenizer, shards and metadata.json into `tmp_dir`; returns the metadata."""
  seq_len, vocab_size = inputs["seq_len"], inputs["vocab_size"]
  start = time.time()
  tmp_model = os.path.join(tmp_dir, TOKENIZER_FILE)
  if data_config.tokenizer_path:
    tokenizer_lib.load_tokenizer(data_config.tokenizer_path, vocab_size=vocab_size)
    shutil.copyfile(data_config.tokenizer_path, tmp_model)
    tokenizer = tokenizer_lib.load_tokenizer(tmp_model, vocab_size=vocab_size)
  else:
    read = sources.SourceStats()
    try:
      tokenizer = tokenizer_lib.train_tokenizer(
          _train_lines(data_config, read), tmp_model, vocab_size=vocab_size,
          model_type=data_config.tokenizer_model_type,
          max_lines=data_config.tokenizer_train_lines)
    except tokenizer_lib.EmptyCorpusError:
      raise _no_text_error(data_config, read) from None
  tokenizer_seconds = time.time() - start

  start = time.time()
  stats = sources.SourceStats()
  shard_rows = max(1, int(data_config.shard_mb * (1 << 20)) // (4 * seq_len))
  writers = {split: _SplitWriter(split, seq_len, shard_rows, tmp_dir) for split in SPLITS}
  tokens = 0
  for chunk in _chunks(sources.documents(data_config, stats), _CHUNK_DOCS):
    ids = tokenizer.encode_batch(chunk, num_threads=data_config.num_threads)
    tokens += sum(map(len, ids))
    is_eval = [_is_eval(text, data_config.eval_fraction) for text in chunk]
    writers["train"].add([d for d, e in zip(ids, is_eval) if not e])
    writers["eval"].add([d for d, e in zip(ids, is_eval) if e])
  dropped = {split: writer.finish() for split, writer in writers.items()}
  encode_seconds = time.time() - start
  if stats.skips():
    logging.warning("Skipped while reading: %s", stats.skips())
  if stats.documents == 0:
    raise _no_text_error(data_config, stats)
  if writers["train"].rows == 0:
    raise errors.InputError(
        f"The corpus gives 0 training sequences of {seq_len} tokens: it has {tokens} tokens "
        f"in {stats.documents} documents ({writers['eval'].documents} held out).")

  splits = {}
  for split, writer in writers.items():
    shards = []
    for i, (path, rows) in enumerate(writer.shard_files):
      name = f"{split}-{i:05d}-of-{len(writer.shard_files):05d}.npy"
      os.replace(path, os.path.join(tmp_dir, name))
      shards.append(dict(file=name, rows=rows))
    splits[split] = dict(rows=writer.rows, documents=writer.documents,
                         dropped_tail_tokens=dropped[split], shards=shards)
  metadata = dict(
      format_version=FORMAT_VERSION,
      inputs=inputs,
      # The hash cache of _file_stats; not an input: a touched file is the same data.
      file_stats=file_stats,
      tokenizer=dict(file=TOKENIZER_FILE, vocab_size=tokenizer.vocab_size,
                     sha256=_sha256(tmp_model), vocab_sha256=tokenizer.vocab_sha256()),
      splits=splits,
      counts=dict(tokens=tokens, **dataclasses.asdict(stats)),
      timing=dict(tokenizer_seconds=tokenizer_seconds, encode_seconds=encode_seconds),
  )
  with open(os.path.join(tmp_dir, METADATA_FILE), "w") as f:
    json.dump(metadata, f, indent=1)
  return metadata


def _main():
  """The prepare-only command line; flags are defined here so importing stays flag-free."""
  from absl import app
  from absl import flags
  from ml_collections import config_flags
  from amos_jax import cli_errors

  config_flag = config_flags.DEFINE_config_file("config", None, "Config file.")
  workdir_flag = flags.DEFINE_string("workdir", None, "Working directory.")
  flags.mark_flags_as_required(["config", "workdir"])

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = config_flag.value
    prepare(config.data, seq_len=config.seq_len, vocab_size=config.model.vocab_size,
            workdir=workdir_flag.value, batch_size=config.batch_size)

  cli_errors.run(main)


if __name__ == "__main__":
  _main()
