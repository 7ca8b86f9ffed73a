"""Prepares pretraining data: tokenizer, packed [CLS] ... [SEP] rows in .npy shards, metadata.

python -m amos_jax.data.prepare --config=configs/tiny.py --workdir=/tmp/amos_tiny

Layout of `prepared_dir` (default <workdir>/data):
  tokenizer.model                      the SentencePiece model (travels with checkpoints)
  train-000000-0000.npy ...            int32 [rows, seq_len], memory-mappable: shard 0 of
                                       work unit 0's training rows, ...
  eval-000000-0000.npy ...             held-out documents, same format
  metadata.json                        inputs, counts, shard list (in unit order); last

The corpus is cut into fixed work units (work_units.py). In each, documents are tokenized,
each followed by [SEP], concatenated into one stream per split and cut into rows of [CLS] +
seq_len-2 stream tokens + [SEP]: no padding anywhere; only each unit's last partial row is
dropped (counted in metadata). A document goes to the eval split when the hash of its text
falls under eval_fraction, so duplicates share a split. The tokenizer is trained first, on
a fixed sample of every unit.

Two drivers run the same steps: this module's, in one process (data.runner="local", the
default), and beam_prepare.py's, an Apache Beam pipeline ("beam"). They write the same
bytes. Here everything is written in a sibling directory `<prepared_dir>.incomplete-*`,
which one rename turns into `prepared_dir`: an interrupted run leaves no `prepared_dir` at
all (the next run removes its leftovers). Concurrent calls take turns on
`<prepared_dir>.lock` (atomic_dir.py). Re-running with the same inputs is a no-op.
Re-running with different inputs (files whose content changed, another seq_len, vocab size
or data setting) is an error naming what changed: point prepared_dir elsewhere or delete
it. What counts as the same input: input_identity.py. Row packing: packing.py. Reading
the result: prepared.py.
"""

import dataclasses
import os
import shutil
import time

from absl import logging

from amos_jax import errors
from amos_jax.data import atomic_dir
from amos_jax.data import files as files_lib
from amos_jax.data import input_identity
from amos_jax.data import prepared as prepared_lib
from amos_jax.data import sources
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data import tokenizer_kinds
from amos_jax.data import work_units
from amos_jax.data.prepared import METADATA_FILE, TOKENIZER_FILE, UNFINISHED_DIR, PreparedData

RUNNERS = ("local", "beam")


def prepare(data_config, *, seq_len: int, vocab_size: int, workdir: str,
            batch_size: int | None = None, beam_pipeline_options: str = "",
            tokenizer=None) -> PreparedData:
  """Prepares (or finds already prepared) data; see the module docstring.

  Args:
    data_config: the `data` section of the config (configs/default.py, data_config()).
    seq_len: tokens per packed row, [CLS] and [SEP] included.
    vocab_size: config.model.vocab_size; the tokenizer must have exactly this many pieces.
    workdir: prepared_dir defaults to <workdir>/data.
    batch_size: if given, the global batch size: fewer training rows is an error.
    beam_pipeline_options: with data.runner="beam", Beam's options (beam_prepare.py).
    tokenizer: a tokenizer to prepare with instead of data.tokenizer_path or a trained one:
      a converted checkpoint's (data/tokenizer_kinds.py), whose ids and special tokens the
      rows then use.
  Returns:
    The prepared data.
  """
  check_settings(data_config, seq_len, beam_pipeline_options)
  directory = data_config.prepared_dir or os.path.join(workdir, "data")
  if data_config.runner == "beam":
    try:
      from amos_jax.data import beam_prepare  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      if "apache_beam" not in str(e):
        raise
      raise errors.InputError(
          "data.runner=beam needs Apache Beam, which is not installed: pip install -r "
          "requirements-beam.txt -c requirements.txt (or pip install '.[beam]').") from e
    prepared = beam_prepare.prepare(data_config, seq_len=seq_len, vocab_size=vocab_size,
                                    directory=directory,
                                    pipeline_options_text=beam_pipeline_options,
                                    tokenizer=tokenizer)
  elif files_lib.is_remote(directory):
    raise errors.InputError(
        f"data.prepared_dir={directory!r} is not on this machine; the local driver writes "
        "local directories. Set --config.data.runner=beam to write it through Apache Beam's "
        "filesystems (docs/beam.md).")
  else:
    prepared = _prepare_locally(data_config, seq_len, vocab_size, os.path.abspath(directory),
                                tokenizer)
  _check_batch(prepared, batch_size)
  return prepared


def check_settings(data_config, seq_len: int, beam_pipeline_options: str):
  """Fails fast, naming the setting, on values no driver can prepare with."""
  if seq_len < 3:
    raise errors.InputError(f"seq_len must be at least 3 ([CLS] x [SEP]), got {seq_len}.")
  if not 0 <= data_config.eval_fraction < 1:
    raise errors.InputError(
        f"data.eval_fraction must be in [0, 1), got {data_config.eval_fraction}.")
  if not data_config.unit_mb > 0:
    raise errors.InputError(f"data.unit_mb must be positive, got {data_config.unit_mb}.")
  if data_config.runner not in RUNNERS:
    raise errors.InputError(
        f"data.runner must be one of {', '.join(RUNNERS)}, got {data_config.runner!r}.")
  if beam_pipeline_options and data_config.runner != "beam":
    raise errors.InputError(
        f"--beam_pipeline_options={beam_pipeline_options!r} is given but data.runner is "
        f"{data_config.runner!r}: add --config.data.runner=beam, or drop the options.")


def _prepare_locally(data_config, seq_len: int, vocab_size: int, directory: str, tokenizer):
  """The local driver: every unit in this process, into a directory renamed into place."""
  os.makedirs(os.path.dirname(directory), exist_ok=True)
  with atomic_dir.exclusive_lock(directory + ".lock"):
    prepared = None
    if os.path.isfile(os.path.join(directory, METADATA_FILE)):
      prepared = prepared_lib.load_prepared(directory)
    elif os.path.isdir(os.path.join(directory, UNFINISHED_DIR)):
      raise errors.InputError(
          f"{directory} holds an unfinished Beam preparation: finish it with "
          "--config.data.runner=beam, or delete it to prepare here.")
    inputs, file_stats = input_identity.inputs_and_file_stats(
        data_config, seq_len, vocab_size,
        input_identity.recorded_file_stats(prepared.metadata) if prepared else {})
    identify_tokenizer(inputs, tokenizer)
    if prepared:
      return found_prepared(prepared, inputs, file_stats)
    with atomic_dir.write_whole(directory, complete_marker=METADATA_FILE,
                                setting="data.prepared_dir") as staging:
      metadata, timing = _prepare_into(staging, data_config, inputs, file_stats, tokenizer)
    log_prepared(directory, metadata, timing)
    return PreparedData(directory=directory, metadata=metadata, timing=timing)


def identify_tokenizer(inputs: dict, tokenizer):
  """Adds a given tokenizer to the inputs that identify a preparation: its kind and
  vocabulary, not a path (nothing when the preparation makes or copies its own)."""
  if tokenizer is not None:
    inputs.update(tokenizer_kind=tokenizer.kind, tokenizer_vocab_sha256=tokenizer.vocab_sha256())


def found_prepared(prepared: PreparedData, inputs: dict, file_stats: list,
                   write_metadata=prepared_lib.write_metadata) -> PreparedData:
  """An already complete directory: checked against this run's inputs (an error naming what
  changed), its hash cache refreshed by `write_metadata(directory, metadata)`."""
  changed = input_identity.changed_inputs(prepared.metadata["inputs"], inputs)
  if changed:
    raise errors.InputError(f"{prepared.directory} was prepared from other inputs ({changed}). "
                            "Delete it or set data.prepared_dir to a new directory.")
  if file_stats != prepared.metadata.get("file_stats"):
    prepared = _record_file_stats(prepared, file_stats, write_metadata)
  logging.info("Data already prepared in %s; nothing to do.", prepared.directory)
  return prepared


def _record_file_stats(prepared: PreparedData, file_stats: list,
                       write_metadata) -> PreparedData:
  """Rewrites metadata.json with the text files' new sizes and mtimes (same content: touched
  or copied files), so that the next start need not hash them again. Only the hash cache
  changes; a directory that cannot be written is left as it is."""
  metadata = dict(prepared.metadata, file_stats=file_stats)
  try:
    write_metadata(prepared.directory, metadata)
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


def plan_units(data_config, file_stats: list) -> list[work_units.Unit]:
  """The work units of the source, from the text files' stats (or the TFDS split)."""
  if data_config.source == "text":
    return work_units.plan_text([(path, size) for path, size, _, _ in file_stats],
                                data_config.unit_mb)
  if data_config.source == "tfds":
    if not data_config.tfds_name:
      raise errors.InputError("data.source is 'tfds' but data.tfds_name is empty.")
    return work_units.plan_tfds(data_config)
  raise errors.InputError(f"data.source must be 'text' or 'tfds', got {data_config.source!r}.")


def shard_rows(data_config, seq_len: int) -> int:
  """Rows per shard: data.shard_mb of int32 rows."""
  return max(1, int(data_config.shard_mb * (1 << 20)) // (4 * seq_len))


def make_tokenizer(data_config, units: list, model_path: str, vocab_size: int,
                   files) -> tokenizer_lib.Tokenizer:
  """Writes the tokenizer to the local `model_path`: data.tokenizer_path's copy, or one
  trained on work_units.tokenizer_sample."""
  if data_config.tokenizer_path:
    tokenizer_lib.load_tokenizer(data_config.tokenizer_path, vocab_size=vocab_size)
    shutil.copyfile(data_config.tokenizer_path, model_path)
    return tokenizer_lib.load_tokenizer(model_path, vocab_size=vocab_size)
  read = sources.SourceStats()
  try:
    return tokenizer_lib.train_tokenizer(
        work_units.tokenizer_sample(units, data_config, read, files.open), model_path,
        vocab_size=vocab_size, model_type=data_config.tokenizer_model_type,
        max_lines=data_config.tokenizer_train_lines)
  except tokenizer_lib.EmptyCorpusError:
    paths = list(dict.fromkeys(unit.path for unit in units))
    raise no_text_error(data_config, dataclasses.asdict(read), paths) from None


def no_text_error(data_config, stats: dict, paths: list[str]) -> errors.InputError:
  """The error for a source without a single document, naming its files (`paths`)."""
  if data_config.source == "text":
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    where = f"data.text_files: {shown} {'holds' if len(paths) == 1 else 'hold'} no text"
  else:
    where = (f"TFDS dataset {data_config.tfds_name!r} split {data_config.tfds_split!r} holds "
             "no text")
  return errors.InputError(
      f"{where} ({stats['empty_files']} empty files, {stats['skipped_non_utf8_lines']} lines "
      f"skipped as not UTF-8, {stats['skipped_long_lines']} longer than data.max_line_bytes="
      f"{data_config.max_line_bytes}): expected UTF-8 text with at least one non-blank line.")


def metadata_of(data_config, inputs: dict, file_stats: list, tokenizer, tokenizer_sha256: str,
                records: list[dict], tokenizer_files=(TOKENIZER_FILE,)) -> dict:
  """metadata.json's content from every unit's record (in unit order); an error for a
  corpus without text or without a single training row."""
  splits, counts = work_units.combine(records, files=len(file_stats) or 1)
  if counts["skipped_non_utf8_lines"] or counts["skipped_long_lines"] or counts["empty_files"]:
    logging.warning("Skipped while reading: %s", {k: v for k, v in counts.items()
                                                  if k.startswith("skipped") or k == "empty_files"})
  if counts["documents"] == 0:
    raise no_text_error(data_config, counts, [path for path, *_ in file_stats])
  if splits["train"]["rows"] == 0:
    raise errors.InputError(
        f"The corpus gives 0 training sequences of {inputs['seq_len']} tokens: it has "
        f"{counts['tokens']} tokens in {counts['documents']} documents "
        f"({splits['eval']['documents']} held out).")
  tokenizer_record = dict(file=tokenizer_files[0], vocab_size=tokenizer.vocab_size,
                          sha256=tokenizer_sha256, vocab_sha256=tokenizer.vocab_sha256())
  if tokenizer.kind != tokenizer_kinds.SENTENCEPIECE:
    # A converted checkpoint's tokenizer: its kind, files and special ids (amos_jax's own
    # are implied when absent, as in every directory prepared before these existed).
    tokenizer_record.update(kind=tokenizer.kind, files=list(tokenizer_files),
                            special=dataclasses.asdict(tokenizer.special))
  return dict(
      format_version=prepared_lib.FORMAT_VERSION,
      inputs=inputs,
      # input_identity's hash cache; not an input: a touched file is the same data.
      file_stats=file_stats,
      tokenizer=tokenizer_record,
      splits=splits,
      counts=counts,
  )


def log_prepared(directory: str, metadata: dict, timing: dict):
  """One line on what was prepared and how fast."""
  splits, counts = metadata["splits"], metadata["counts"]
  logging.info("Prepared %s: %d train and %d eval rows of %d tokens from %d documents "
               "(%.1f MB, %d work units); tokenizer %.1fs, units %.1fs.", directory,
               splits["train"]["rows"], splits["eval"]["rows"], metadata["inputs"]["seq_len"],
               counts["documents"], counts["text_bytes"] / 1e6, counts["units"],
               timing["tokenizer_seconds"], timing["units_seconds"])


def _prepare_into(staging: str, data_config, inputs: dict, file_stats: list,
                  tokenizer=None) -> tuple[dict, dict]:
  """Writes tokenizer, shards and metadata.json into `staging`; returns the metadata and the
  seconds each step took. A given `tokenizer` is saved there instead of one made."""
  files = files_lib.LocalFiles()
  start = time.time()
  units = plan_units(data_config, file_stats)
  if tokenizer is None:
    tokenizer = make_tokenizer(data_config, units, os.path.join(staging, TOKENIZER_FILE),
                               inputs["vocab_size"], files)
    tokenizer_files = [TOKENIZER_FILE]
  else:
    tokenizer_files = tokenizer.save(staging)
  tokenizer_seconds = time.time() - start

  start = time.time()
  records = [
      work_units.prepare_unit(
          unit, data_config, tokenizer, seq_len=inputs["seq_len"],
          shard_rows=shard_rows(data_config, inputs["seq_len"]),
          num_threads=data_config.num_threads or os.cpu_count(), open_binary=files.open,
          create=lambda name: open(os.path.join(staging, name), "wb"))
      for unit in units]
  metadata = metadata_of(data_config, inputs, file_stats, tokenizer,
                         input_identity.sha256_file(os.path.join(staging, tokenizer_files[0])),
                         records, tokenizer_files)
  prepared_lib.write_metadata(staging, metadata)  # Last: it marks the directory complete.
  return metadata, dict(tokenizer_seconds=tokenizer_seconds, units_seconds=time.time() - start)


def _main():
  """The prepare-only command line; flags are defined here so importing stays flag-free."""
  from absl import app
  from absl import flags
  from ml_collections import config_flags
  from amos_jax import cli_errors

  config_flag = config_flags.DEFINE_config_file("config", None, "Config file.")
  workdir_flag = flags.DEFINE_string("workdir", None, "Working directory.")
  options_flag = flags.DEFINE_string(
      "beam_pipeline_options", "", "With --config.data.runner=beam: Beam's pipeline options, "
      "comma-separated, e.g. --runner=DirectRunner,--direct_num_workers=0 (docs/beam.md).")
  flags.mark_flags_as_required(["config", "workdir"])

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = config_flag.value
    if config.get("init_checkpoint"):
      raise errors.InputError(
          "config.init_checkpoint is set: prepare with python -m amos_jax.main --mode=prepare, "
          "which tokenizes with the init checkpoint's tokenizer as training does.")
    prepare(config.data, seq_len=config.seq_len, vocab_size=config.model.vocab_size,
            workdir=workdir_flag.value, batch_size=config.batch_size,
            beam_pipeline_options=options_flag.value)

  cli_errors.run(main)


if __name__ == "__main__":
  _main()
