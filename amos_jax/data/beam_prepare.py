"""The Beam driver: prepare.py's preparation as an Apache Beam pipeline (data.runner="beam").

python -m amos_jax.main --mode=prepare --config=configs/tiny.py --workdir=/tmp/amos \
  --config.data.runner=beam \
  --beam_pipeline_options=--runner=DirectRunner,--direct_running_mode=multi_processing,--direct_num_workers=0

The launcher (this process) plans the work units and trains the tokenizer on the same
sample as the local driver; the pipeline runs work_units.prepare_unit on every unit on
Beam's workers (Create -> Reshuffle, which spreads the units over the workers -> ParDo),
each loading the tokenizer shipped with the DoFn; then the launcher writes metadata.json
from the units' records. Every byte goes through Beam's filesystems (beam_files.py) straight
into prepared_dir, as an object store cannot rename a directory:

  tokenizer.model, then _unfinished/plan.json    the inputs this directory is being made of
                                                 (a given tokenizer: its own files instead)
  <split>-<unit>-<part>.npy, then _unfinished/units/<unit>.json   a unit's shards, its record
  _unfinished/errors/<unit>.txt                  why a unit could not be read (bad input)
  metadata.json                                  last: the directory is complete

Readers refuse a directory without metadata.json (prepared.load_prepared). A run that was
killed or failed is rerun with the same command: it finds its plan (the same inputs, or an
error naming what changed), keeps the tokenizer and runs only the units without a record.
Bad input (a unit that cannot be read, no text at all) is an error naming the file, after
which the directory is removed: fixing the input changes what every unit is made of.
Once metadata.json is written, _unfinished/ is deleted, and the directory holds the same
bytes as the local driver's. docs/beam.md has the commands for Dataflow, Flink and Spark.
"""

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import time

from absl import logging
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import ml_collections

from amos_jax import errors
from amos_jax.data import atomic_dir
from amos_jax.data import beam_files
from amos_jax.data import files as files_lib
from amos_jax.data import input_identity
from amos_jax.data import prepare as prepare_lib
from amos_jax.data import prepared as prepared_lib
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data import tokenizer_kinds
from amos_jax.data import work_units
from amos_jax.data.prepared import METADATA_FILE, TOKENIZER_FILE, UNFINISHED_DIR, PreparedData

_PLAN_FILE = "plan.json"


def pipeline_options(text: str) -> PipelineOptions:
  """Beam's options from --beam_pipeline_options: comma-separated --name=value flags (a value
  may hold commas: the text is cut only before each --). An unknown option is an error."""
  flags = [flag for flag in re.split(r",(?=--)", text.strip()) if flag]
  for flag in flags:
    if not flag.startswith("--"):
      raise errors.InputError(
          f"--beam_pipeline_options={text!r}: expected comma-separated --name=value options, "
          f"e.g. --runner=DirectRunner,--direct_num_workers=0; {flag!r} does not start "
          "with --.")
  options = PipelineOptions(flags)
  unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                   - set(options.get_all_options()))
  if unknown:
    raise errors.InputError(
        f"--beam_pipeline_options: Beam has no option {', '.join('--' + u for u in unknown)}; "
        "expected options of Beam's PipelineOptions (docs/beam.md lists each runner's).")
  return options


def prepare(data_config, *, seq_len: int, vocab_size: int, directory: str,
            pipeline_options_text: str, tokenizer=None) -> PreparedData:
  """prepare.prepare with data.runner="beam": see the module docstring. Without a --runner
  in `pipeline_options_text`, Beam runs the DirectRunner. A given `tokenizer` (a converted
  checkpoint's) is shipped instead of one made, as its files: tokenizer.json for WordPiece."""
  options = pipeline_options(pipeline_options_text)
  beam_files.FileSystems.set_options(options)  # Credentials and project of gs:// and s3://.
  lock = contextlib.nullcontext()
  if not files_lib.is_remote(directory):
    directory = os.path.abspath(directory)
    os.makedirs(os.path.dirname(directory), exist_ok=True)
    lock = atomic_dir.exclusive_lock(directory + ".lock")  # Takes turns with the local driver.
  with lock:
    return _prepare(data_config, seq_len, vocab_size, directory, options, tokenizer)


def _read_metadata(path: str) -> dict:
  return prepared_lib.parse_metadata(beam_files.read_bytes(path).decode("utf-8"), path)


def _write_metadata(directory: str, metadata: dict):
  text = io.StringIO()
  prepared_lib.dump_metadata(metadata, text)
  beam_files.write_whole(beam_files.join(directory, METADATA_FILE), text.getvalue().encode())


def _prepare(data_config, seq_len: int, vocab_size: int, directory: str,
             options: PipelineOptions, given_tokenizer) -> PreparedData:
  files = beam_files.BeamFiles()
  unfinished = beam_files.join(directory, UNFINISHED_DIR)
  metadata_path = beam_files.join(directory, METADATA_FILE)
  if beam_files.exists(metadata_path):
    found = PreparedData(directory=directory, metadata=_read_metadata(metadata_path))
    inputs, file_stats = input_identity.inputs_and_file_stats(
        data_config, seq_len, vocab_size,
        input_identity.recorded_file_stats(found.metadata), files)
    prepare_lib.identify_tokenizer(inputs, given_tokenizer)
    beam_files.delete(unfinished)  # Left by a run killed right after writing metadata.json.
    return prepare_lib.found_prepared(found, inputs, file_stats,
                                      write_metadata=_write_metadata)
  inputs, file_stats = input_identity.inputs_and_file_stats(data_config, seq_len, vocab_size,
                                                            {}, files)
  prepare_lib.identify_tokenizer(inputs, given_tokenizer)
  units = prepare_lib.plan_units(data_config, file_stats)

  start = time.time()
  with tempfile.TemporaryDirectory() as local:
    tokenizer, shipped = _plan_and_tokenizer(data_config, directory, inputs, units, local,
                                             files, given_tokenizer)
    names = list(shipped)
    tokenizer_seconds = time.time() - start

    start = time.time()
    try:
      _run_units(data_config, directory, units, tokenizer, shipped, inputs, options)
      records = _records(directory, units)
      metadata = prepare_lib.metadata_of(
          data_config, inputs, file_stats, tokenizer,
          input_identity.sha256_file(os.path.join(local, names[0])), records, names)
    except errors.InputError:
      # Bad input: fixing it changes the inputs, which no unit done so far was made of. The
      # directory holds only this preparation's files (checked before the plan was written).
      beam_files.delete(directory)
      raise
  _write_metadata(directory, metadata)  # Last but the clean-up: the directory is complete.
  beam_files.delete(unfinished)
  timing = dict(tokenizer_seconds=tokenizer_seconds, units_seconds=time.time() - start)
  prepare_lib.log_prepared(directory, metadata, timing)
  return PreparedData(directory=directory, metadata=metadata, timing=timing)


def _plan_and_tokenizer(data_config, directory: str, inputs: dict, units: list, local: str,
                        files, given_tokenizer) -> tuple[object, dict[str, bytes]]:
  """(the tokenizer, {name: bytes} of its files, also in the `local` directory): a rerun's,
  read back, or made now (or the given one, saved) and written to `directory` with the plan
  after it."""
  plan_path = beam_files.join(directory, UNFINISHED_DIR, _PLAN_FILE)
  model_path = os.path.join(local, TOKENIZER_FILE)
  shipped_path = beam_files.join(directory, TOKENIZER_FILE)
  if given_tokenizer is not None:
    # Saved the same way as the local driver saves it; the plan's inputs identify it.
    shipped = {}
    for name in given_tokenizer.save(local):
      with open(os.path.join(local, name), "rb") as f:
        shipped[name] = f.read()
    if not beam_files.exists(plan_path):
      _check_empty(directory)
      for name, content in shipped.items():
        beam_files.write_whole(beam_files.join(directory, name), content)
      _write_plan(plan_path, inputs, units)
    else:
      _check_plan(plan_path, directory, inputs, units)
      _check_shipped(directory, shipped)
    return given_tokenizer, shipped
  if beam_files.exists(plan_path):
    _check_plan(plan_path, directory, inputs, units)
    model = beam_files.read_bytes(shipped_path)
    with open(model_path, "wb") as f:
      f.write(model)
    tokenizer = tokenizer_lib.load_tokenizer(model_path, vocab_size=inputs["vocab_size"])
    return tokenizer, {TOKENIZER_FILE: model}
  _check_empty(directory)
  tokenizer = prepare_lib.make_tokenizer(data_config, units, model_path, inputs["vocab_size"],
                                         files)
  with open(model_path, "rb") as f:
    model = f.read()
  beam_files.write_whole(shipped_path, model)
  _write_plan(plan_path, inputs, units)
  return tokenizer, {TOKENIZER_FILE: model}


def _check_shipped(directory: str, shipped: dict[str, bytes]):
  """A rerun's given tokenizer must write the files the first run shipped: the vocabulary
  (in the plan's inputs) can be the same under another pipeline (lower-casing, accents)."""
  for name, content in shipped.items():
    if content != beam_files.read_bytes(beam_files.join(directory, name)):
      raise errors.InputError(
          f"{beam_files.join(directory, name)} differs from the tokenizer this run was given: "
          "its unfinished preparation used another one. Delete the directory or set "
          "data.prepared_dir to a new one.")


def _check_empty(directory: str):
  if beam_files.listing(directory):
    raise FileExistsError(
        f"{directory} is not empty but has no {METADATA_FILE} nor an unfinished preparation's "
        f"{UNFINISHED_DIR}/{_PLAN_FILE}, so amos_jax did not write it. Delete it or set "
        "data.prepared_dir to another directory.")


def _write_plan(plan_path: str, inputs: dict, units: list):
  plan = dict(inputs=inputs, units=len(units))
  beam_files.write_whole(plan_path, json.dumps(plan, indent=1).encode())  # After the model.


def _check_plan(plan_path: str, directory: str, inputs: dict, units: list):
  """A rerun's plan must be of the same inputs: an error naming what changed otherwise."""
  plan = json.loads(beam_files.read_bytes(plan_path))
  changed = input_identity.changed_inputs(plan["inputs"], inputs)
  if changed:
    raise errors.InputError(
        f"{directory} holds an unfinished preparation of other inputs ({changed}). Delete it "
        "or set data.prepared_dir to a new directory.")
  done = len(beam_files.listing(beam_files.join(directory, UNFINISHED_DIR, "units")))
  logging.info("Resuming the preparation in %s: %d of %d units done.", directory, done,
               len(units))


def _record_path(directory: str, unit: int) -> str:
  return beam_files.join(directory, UNFINISHED_DIR, "units", f"{unit:06d}.json")


def _error_path(directory: str, unit: int) -> str:
  return beam_files.join(directory, UNFINISHED_DIR, "errors", f"{unit:06d}.txt")


def _run_units(data_config, directory: str, units: list, tokenizer, shipped: dict[str, bytes],
               inputs: dict, options: PipelineOptions):
  """Runs the units that have no record yet as a Beam pipeline; an error naming the first
  unit's bad input if any could not be read."""
  errors_dir = beam_files.join(directory, UNFINISHED_DIR, "errors")
  beam_files.delete(errors_dir)  # A previous run's: those units run again.
  done = set(beam_files.listing(beam_files.join(directory, UNFINISHED_DIR, "units")))
  pending = [unit for unit in units if _record_path(directory, unit.index) not in done]
  if pending:
    prepare_unit = _PrepareUnit(
        directory=directory, data_config=data_config.to_dict(), kind=tokenizer.kind,
        tokenizer_files=shipped,
        vocab_size=inputs["vocab_size"], seq_len=inputs["seq_len"],
        shard_rows=prepare_lib.shard_rows(data_config, inputs["seq_len"]),
        # One tokenizer thread per DoFn: runners run a DoFn per core already.
        num_threads=data_config.num_threads or 1)
    with _workers_import_amos_jax(), beam.Pipeline(options=options) as pipeline:
      _ = (pipeline
           | "Units" >> beam.Create([(u.index, u.path, u.start, u.end) for u in pending])
           | "Spread" >> beam.Reshuffle()
           | "Prepare" >> beam.ParDo(prepare_unit))
  failed = beam_files.listing(errors_dir)
  if failed:
    first = beam_files.read_bytes(failed[0]).decode("utf-8")
    beam_files.delete(errors_dir)
    more = f" ({len(failed) - 1} more units failed too)" if len(failed) > 1 else ""
    raise errors.InputError(first + more)


@contextlib.contextmanager
def _workers_import_amos_jax():
  """Lets worker processes that the DirectRunner starts on this machine (multi_processing)
  import amos_jax from where this process did, also when it is not installed and the
  launcher runs outside the repository. Remote workers install it (docs/beam.md)."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  before = os.environ.get("PYTHONPATH")
  os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, before]))
  try:
    yield
  finally:
    if before is None:
      del os.environ["PYTHONPATH"]
    else:
      os.environ["PYTHONPATH"] = before


def _records(directory: str, units: list) -> list[dict]:
  """Every unit's record, in unit order."""
  records = []
  for unit in units:
    path = _record_path(directory, unit.index)
    if not beam_files.exists(path):
      raise RuntimeError(f"The pipeline ended without a record of unit {unit.index} "
                         f"({path}): rerun to prepare the units still missing.")
    records.append(json.loads(beam_files.read_bytes(path)))
  return records


class _PrepareUnit(beam.DoFn):
  """work_units.prepare_unit on a worker: shards, then the record, into the directory."""

  def __init__(self, *, directory: str, data_config: dict, kind: str,
               tokenizer_files: dict[str, bytes], vocab_size: int, seq_len: int,
               shard_rows: int, num_threads: int):
    super().__init__()
    self.directory, self.config_dict = directory, data_config
    self.kind, self.tokenizer_files = kind, tokenizer_files
    self.vocab_size, self.seq_len, self.shard_rows = vocab_size, seq_len, shard_rows
    self.num_threads = num_threads

  def setup(self):
    self.data_config = ml_collections.ConfigDict(self.config_dict)
    self.files = beam_files.BeamFiles()
    self.local = tempfile.mkdtemp(prefix="amos_jax_tokenizer_")
    for name, content in self.tokenizer_files.items():
      with open(os.path.join(self.local, name), "wb") as f:
        f.write(content)
    self.tokenizer = tokenizer_kinds.load(self.kind, self.local, vocab_size=self.vocab_size)

  def process(self, element):
    unit = work_units.Unit(*element)
    try:
      record = work_units.prepare_unit(
          unit, self.data_config, self.tokenizer, seq_len=self.seq_len,
          shard_rows=self.shard_rows, num_threads=self.num_threads,
          open_binary=self.files.open,
          create=lambda name: beam_files.create(beam_files.join(self.directory, name)))
    # Bad input (sources.py names the file): the launcher says which. Other errors, a
    # filesystem's transient OSError among them, propagate so that the runner retries the
    # unit and a rerun keeps the units already written.
    except errors.InputError as error:
      beam_files.write_whole(_error_path(self.directory, unit.index), str(error).encode())
      return
    # After the shards: a record means the unit is done, and a rerun skips it.
    beam_files.write_whole(_record_path(self.directory, unit.index),
                           json.dumps(record).encode())

  def teardown(self):
    shutil.rmtree(self.local, ignore_errors=True)
