"""The Beam driver: the same bytes as the local driver with one worker or several processes,
a killed run rerun to the same directory, training on it, bad input as one clear line."""

import dataclasses
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("apache_beam")  # requirements-beam.txt; CI installs it.

from amos_jax import errors  # pylint: disable=g-import-not-at-top
from amos_jax.data import prepare as prepare_lib  # pylint: disable=g-import-not-at-top
from amos_jax.data import prepared as prepared_lib  # pylint: disable=g-import-not-at-top
from amos_jax.data import sources  # pylint: disable=g-import-not-at-top
from configs import default  # pylint: disable=g-import-not-at-top

SEQ_LEN = 32
VOCAB = 256
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MULTI_PROCESSING = "--direct_running_mode=multi_processing,--direct_num_workers=2"


def _write_corpus(directory, num_chapters=160):
  """Chapters of the bundled sample in two plain files and one .gz, cut into ~20 units."""
  with gzip.open(sources.SAMPLE_PATH, "rt") as f:
    chapters = f.read().split("\n\n")[:num_chapters]
  for i in range(2):
    with open(os.path.join(directory, f"part{i}.txt"), "w") as f:
      f.write("\n\n".join(chapters[i:num_chapters - 40:2]) + "\n")
  with gzip.open(os.path.join(directory, "part2.txt.gz"), "wt") as f:
    f.write("\n\n".join(chapters[num_chapters - 40:]) + "\n")
  return os.path.join(directory, "part*")


def _config(text_files, prepared_dir, runner="beam", **overrides):
  config = default.data_config()
  config.update(dict(text_files=text_files, prepared_dir=str(prepared_dir), runner=runner,
                     eval_fraction=0.1, unit_mb=0.03, shard_mb=0.02), **overrides)
  return config


def _prepare(config, options=""):
  return prepare_lib.prepare(config, seq_len=SEQ_LEN, vocab_size=VOCAB, workdir="/unused",
                             beam_pipeline_options=options)


def _contents(directory):
  """Every file under `directory`, by relative path, with its bytes."""
  found = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, directory)] = f.read()
  return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  directory = tmp_path_factory.mktemp("corpus")
  return _write_corpus(str(directory))


@pytest.fixture(scope="module")
def local(corpus, tmp_path_factory):
  """The local driver's directory: what every Beam run must reproduce byte for byte."""
  data = _prepare(_config(corpus, tmp_path_factory.mktemp("local") / "data", runner="local"))
  return data, _contents(data.directory)


def test_one_worker_and_several_processes_write_the_local_drivers_bytes(corpus, local,
                                                                        tmp_path):
  data, expected = local
  counts = data.metadata["counts"]
  assert counts["units"] >= 15 and counts["files"] == 3
  assert sum(data.metadata["splits"][s]["dropped_tail_tokens"] for s in ("train", "eval")) > 0
  assert len([name for name in expected if name.startswith("train-")]) > counts["units"]
  for options in ("", MULTI_PROCESSING):
    beam = _prepare(_config(corpus, tmp_path / options.replace("-", "") / "data"), options)
    assert beam.metadata == data.metadata
    found = _contents(beam.directory)
    assert sorted(found) == sorted(expected)
    assert [name for name in found if found[name] != expected[name]] == []
    assert _prepare(_config(corpus, beam.directory)).metadata == data.metadata  # A no-op.


def test_a_converted_checkpoints_wordpiece_tokenizer_gives_the_local_drivers_bytes(
    corpus, tmp_path, monkeypatch):
  pytest.importorskip("tokenizers")
  import glob  # pylint: disable=g-import-not-at-top
  from tokenizers.implementations import BertWordPieceTokenizer  # pylint: disable=g-import-not-at-top
  from amos_jax.data import beam_prepare  # pylint: disable=g-import-not-at-top
  from amos_jax.data import wordpiece_tokenizer  # pylint: disable=g-import-not-at-top
  trainer = BertWordPieceTokenizer(lowercase=False)
  with open(sorted(glob.glob(corpus))[0], encoding="utf-8") as f:
    trainer.train_from_iterator(f.read().split("\n"), vocab_size=VOCAB,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
  trainer.save_model(str(tmp_path))
  tokenizer = wordpiece_tokenizer.load(str(tmp_path))  # From vocab.txt, as a BERT directory.

  def prepare(runner, name):
    return prepare_lib.prepare(_config(corpus, tmp_path / name, runner=runner), seq_len=SEQ_LEN,
                               vocab_size=VOCAB, workdir="/unused", tokenizer=tokenizer)

  local = prepare("local", "local")
  assert local.metadata["tokenizer"]["kind"] == "wordpiece"
  # A Beam run that stops before metadata.json, then its rerun: the plan is of the same
  # inputs (the given tokenizer's vocabulary among them) and every unit is already done.
  write_metadata = beam_prepare._write_metadata

  def stopped(*args):
    monkeypatch.setattr(beam_prepare, "_write_metadata", write_metadata)
    raise RuntimeError("stopped before metadata.json")

  monkeypatch.setattr(beam_prepare, "_write_metadata", stopped)
  with pytest.raises(RuntimeError, match="stopped before metadata.json"):
    prepare("beam", "beam")
  assert os.path.isfile(tmp_path / "beam" / prepared_lib.UNFINISHED_DIR / "plan.json")
  beam = prepare("beam", "beam")
  assert beam.metadata == local.metadata
  found, expected = _contents(beam.directory), _contents(local.directory)
  assert sorted(found) == sorted(expected) and "tokenizer.json" in found
  assert [name for name in found if found[name] != expected[name]] == []

  # Same vocabulary, another pipeline (cased; vocab.txt alone means lower-cased): a rerun of the unfinished preparation
  # with it is refused, naming the shipped file.
  monkeypatch.setattr(beam_prepare, "_write_metadata", stopped)
  with pytest.raises(RuntimeError, match="stopped before metadata.json"):
    prepare("beam", "beam_cased")
  cased = dataclasses.replace(tokenizer, backend=_cased(tokenizer.backend))
  assert cased.vocab_sha256() == tokenizer.vocab_sha256()
  with pytest.raises(errors.InputError, match="beam_cased/tokenizer.json differs from the "
                                              "tokenizer this run was given"):
    prepare_lib.prepare(_config(corpus, tmp_path / "beam_cased"), seq_len=SEQ_LEN,
                        vocab_size=VOCAB, workdir="/unused", tokenizer=cased)


def _cased(backend):
  from tokenizers import Tokenizer, normalizers  # pylint: disable=g-import-not-at-top
  copy = Tokenizer.from_str(backend.to_str())
  copy.normalizer = normalizers.BertNormalizer(lowercase=False)
  return copy


_KILL_AT_FOURTH_UNIT = """
import json, os, signal, sys
from amos_jax.data import packing, prepare, work_units
from configs import default
real = work_units.prepare_unit
started = []

def killed_in_the_fourth(unit, *args, **kwargs):
  started.append(unit.index)
  if len(started) == 4:  # Half a shard written, then SIGKILL: no clean-up of any kind.
    with kwargs["create"](packing.shard_name("train", unit.index, 0)) as f:
      f.write(b"half a shard")
    os.kill(os.getpid(), signal.SIGKILL)
  return real(unit, *args, **kwargs)

work_units.prepare_unit = killed_in_the_fourth
config = default.data_config()
config.update(json.loads(sys.argv[1]))
prepare.prepare(config, seq_len=%d, vocab_size=%d, workdir="/unused")
""" % (SEQ_LEN, VOCAB)


def test_a_killed_run_is_rerun_to_the_same_directory(corpus, local, tmp_path):
  data, expected = local
  config = _config(corpus, tmp_path / "data")
  killed = subprocess.run([sys.executable, "-c", _KILL_AT_FOURTH_UNIT,
                           json.dumps(config.to_dict())], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
  assert killed.returncode == -9, killed.stderr[-3000:]
  directory = str(tmp_path / "data")
  records = os.listdir(os.path.join(directory, prepared_lib.UNFINISHED_DIR, "units"))
  assert len(records) == 3 and not os.path.exists(os.path.join(directory, "metadata.json"))
  with pytest.raises(FileNotFoundError, match="Beam preparation has not finished"):
    prepared_lib.load_prepared(directory)
  with pytest.raises(errors.InputError, match="unfinished Beam preparation"):
    _prepare(_config(corpus, directory, runner="local"))
  with pytest.raises(errors.InputError, match="unfinished preparation of other inputs "
                                              r"\(eval_fraction: prepared 0.1, now 0.2\)"):
    _prepare(_config(corpus, directory, eval_fraction=0.2))
  done = [int(name.split(".")[0]) for name in records]
  kept = {name: os.stat(os.path.join(directory, name)).st_mtime_ns
          for name in os.listdir(directory) if name.endswith(".npy")
          and int(name.split("-")[1]) in done}
  assert kept

  rerun = _prepare(_config(corpus, directory))
  assert rerun.metadata == data.metadata
  found = _contents(directory)
  assert sorted(found) == sorted(expected)
  assert [name for name in found if found[name] != expected[name]] == []
  # The units done before the kill were skipped, not written again.
  assert {name: os.stat(os.path.join(directory, name)).st_mtime_ns for name in kept} == kept


@pytest.mark.slow  # Compiling the tiny train step: about 25 s of this test's 35 s.
def test_training_reads_a_beam_prepared_directory_as_the_local_one(corpus, local, tmp_path):
  from amos_jax.train import loop  # pylint: disable=g-import-not-at-top
  from amos_jax.train import metric_logging  # pylint: disable=g-import-not-at-top
  from configs import tiny  # pylint: disable=g-import-not-at-top
  data, _ = local
  beam = _prepare(_config(corpus, tmp_path / "beam"))
  losses = []
  for directory in (data.directory, beam.directory):
    config = tiny.get_config()
    # Two steps, no evaluation: the losses are what the data decides.
    config.update(dict(num_train_steps=100, batch_size=8, seq_len=SEQ_LEN, log_every_steps=1,
                       eval_every_steps=1000, checkpoint_every_steps=1000,
                       peak_flops_per_device=1e11))
    config.model.vocab_size = VOCAB
    config.data = _config(corpus, directory, runner="local")
    workdir = str(tmp_path / f"run{len(losses)}")
    loop.train_and_evaluate(config, workdir, stop_at_step=2)
    losses.append([(r["step"], r["loss"]) for r in metric_logging.read_metrics(workdir)
                   if "loss" in r])
  assert [step for step, _ in losses[0]] == [1, 2]
  assert losses[1] == losses[0]
  assert np.isfinite([loss for _, loss in losses[0]]).all()


def test_bad_input_is_one_clear_error(corpus, local, tmp_path):
  data, _ = local
  given = dict(tokenizer_path=data.tokenizer_path)  # No sampling: the workers read first.
  corrupt = tmp_path / "corrupt.txt.gz"
  with gzip.open(corrupt, "wt") as f:
    f.write("a fine beginning\n\n" * 2000)
  corrupt.write_bytes(corrupt.read_bytes()[:-30])  # Cut off before the end of the stream.
  with pytest.raises(errors.InputError, match="corrupt.txt.gz is not a readable gzip file"):
    _prepare(_config(f"{corpus},{corrupt}", tmp_path / "a", **given))

  assert not (tmp_path / "a").exists()  # Nothing to keep: the fixed input is another input.

  (tmp_path / "binary.bin").write_bytes(bytes(range(128, 256)) * 64)
  (tmp_path / "empty.txt").write_bytes(b"")
  for files, what in (("binary.bin", "0 empty files, 1 lines skipped as not UTF-8"),
                      ("empty.txt", "1 empty files, 0 lines"), ("*.bin,*.txt", "hold no text")):
    paths = ",".join(str(tmp_path / f) for f in files.split(","))
    with pytest.raises(errors.InputError, match=rf"no text \(.*{what}|{what}"):
      _prepare(_config(paths, tmp_path / "b", **given))

  with pytest.raises(errors.InputError, match="prepared from other inputs.*eval_fraction"):
    _prepare(_config(corpus, data.directory, eval_fraction=0.5))
  (tmp_path / "foreign").mkdir()
  (tmp_path / "foreign" / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="not empty but has no metadata.json"):
    _prepare(_config(corpus, tmp_path / "foreign"))
  assert os.listdir(tmp_path / "foreign") == ["notes.txt"]
  with pytest.raises(errors.InputError, match="Beam has no option --direct_num_wrkers"):
    _prepare(_config(corpus, tmp_path / "c"), "--direct_num_wrkers=2")
  with pytest.raises(errors.InputError, match="add --config.data.runner=beam"):
    _prepare(_config(corpus, tmp_path / "c", runner="local"), "--direct_num_workers=2")


def test_command_line_prints_one_error_line(tmp_path):
  (tmp_path / "binary.bin").write_bytes(bytes(range(128, 256)) * 64)
  (tmp_path / "empty.txt").write_bytes(b"")
  result = subprocess.run(
      [sys.executable, "-m", "amos_jax.data.prepare", "--config=configs/tiny.py",
       f"--workdir={tmp_path}", "--config.data.runner=beam",
       f"--config.data.text_files={tmp_path}/binary.bin,{tmp_path}/empty.txt",
       "--beam_pipeline_options=--runner=DirectRunner"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert result.stderr.splitlines()[-1] == (
      f"error: data.text_files: {tmp_path}/binary.bin, {tmp_path}/empty.txt hold no text "
      "(1 empty files, 1 lines skipped as not UTF-8, 0 longer than data.max_line_bytes="
      "1048576): expected UTF-8 text with at least one non-blank line.")
  assert not (tmp_path / "data").exists()
