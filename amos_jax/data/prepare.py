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
next run removes its leftovers). Concurrent calls take turns on `<prepared_dir>.lock`
(atomic_dir.py). Re-running with the same inputs is a no-op. Re-running with different
inputs (files whose content changed, another seq_len, vocab size or data setting) is an
error naming what changed: point prepared_dir elsewhere or delete it. What counts as the
same input: input_identity.py. Row packing: packing.py. Reading the result: prepared.py.
"""

import dataclasses
import itertools
import os
import shutil
import time
import zlib
from typing import Iterator

from absl import logging

from amos_jax import errors
from amos_jax.data import atomic_dir
from amos_jax.data import input_identity
from amos_jax.data import packing
from amos_jax.data import prepared as prepared_lib
from amos_jax.data import sources
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data.prepared import METADATA_FILE, SPLITS, TOKENIZER_FILE, PreparedData

# Documents tokenized per call; large enough to keep the tokenizer threads busy.
_CHUNK_DOCS = 2048


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
  with atomic_dir.exclusive_lock(directory + ".lock"):
    prepared = None
    if os.path.isfile(os.path.join(directory, METADATA_FILE)):
      prepared = prepared_lib.load_prepared(directory)
    inputs, file_stats = input_identity.inputs_and_file_stats(
        data_config, seq_len, vocab_size,
        input_identity.recorded_file_stats(prepared.metadata) if prepared else {})
    if prepared:
      changed = input_identity.changed_inputs(prepared.metadata["inputs"], inputs)
      if changed:
        raise errors.InputError(f"{directory} was prepared from other inputs ({changed}). "
                                "Delete it or set data.prepared_dir to a new directory.")
      if file_stats != prepared.metadata.get("file_stats"):
        prepared = _record_file_stats(prepared, file_stats)
      logging.info("Data already prepared in %s; nothing to do.", directory)
    else:
      with atomic_dir.write_whole(directory, complete_marker=METADATA_FILE,
                                  setting="data.prepared_dir") as staging:
        metadata = _prepare_into(staging, data_config, inputs, file_stats)
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
  try:
    prepared_lib.write_metadata(prepared.directory, metadata)
  except OSError as error:
    logging.warning("Could not record the text files' new mtimes in %s (%s): they will be "
                    "hashed again at the next start.", prepared.directory, error)
    return prepared
  return PreparedData(directory=prepared.directory, metadata=metadata)


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
  writers = {split: packing.ShardedRowWriter(split, seq_len, shard_rows, tmp_dir)
             for split in SPLITS}
  tokens = 0
  for chunk in _chunks(sources.documents(data_config, stats), _CHUNK_DOCS):
    ids = tokenizer.encode_batch(chunk, num_threads=data_config.num_threads)
    tokens += sum(map(len, ids))
    is_eval = [_is_eval(text, data_config.eval_fraction) for text in chunk]
    writers["train"].add([d for d, e in zip(ids, is_eval) if not e])
    writers["eval"].add([d for d, e in zip(ids, is_eval) if e])
  shards = {split: writer.finish() for split, writer in writers.items()}
  encode_seconds = time.time() - start
  if stats.skips():
    logging.warning("Skipped while reading: %s", stats.skips())
  if stats.documents == 0:
    raise _no_text_error(data_config, stats)
  if writers["train"].rows == 0:
    raise errors.InputError(
        f"The corpus gives 0 training sequences of {seq_len} tokens: it has {tokens} tokens "
        f"in {stats.documents} documents ({writers['eval'].documents} held out).")

  splits = {split: dict(rows=writer.rows, documents=writer.documents,
                        dropped_tail_tokens=len(writer.carry), shards=shards[split])
            for split, writer in writers.items()}
  metadata = dict(
      format_version=prepared_lib.FORMAT_VERSION,
      inputs=inputs,
      # input_identity's hash cache; not an input: a touched file is the same data.
      file_stats=file_stats,
      tokenizer=dict(file=TOKENIZER_FILE, vocab_size=tokenizer.vocab_size,
                     sha256=input_identity.sha256_file(tmp_model),
                     vocab_sha256=tokenizer.vocab_sha256()),
      splits=splits,
      counts=dict(tokens=tokens, **dataclasses.asdict(stats)),
      timing=dict(tokenizer_seconds=tokenizer_seconds, encode_seconds=encode_seconds),
  )
  prepared_lib.write_metadata(tmp_dir, metadata)  # Last: it marks the directory complete.
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
