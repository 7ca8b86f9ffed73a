"""Preparation: packing without padding, held-out split, idempotence, atomicity, bad input."""

import gzip
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.data import input_identity
from amos_jax.data import prepare as prepare_lib
from amos_jax.data import prepared as prepared_lib
from amos_jax.data import sources
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data import work_units
from configs import default

SEQ_LEN = 32
VOCAB = 256
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_corpus(directory, num_chapters=120, files=2):
  """The first chapters of the bundled sample, spread over `files` text files."""
  with gzip.open(sources.SAMPLE_PATH, "rt") as f:
    chapters = f.read().split("\n\n")[:num_chapters]
  paths = []
  for i in range(files):
    path = os.path.join(directory, f"part{i}.txt")
    with open(path, "w") as f:
      f.write("\n\n".join(chapters[i::files]) + "\n")
    paths.append(path)
  return paths


def _config(paths, **overrides):
  config = default.data_config()
  config.text_files = ",".join(paths)
  config.eval_fraction = 0.1
  config.update(overrides)
  return config


def _prepare(config, workdir, **kwargs):
  return prepare_lib.prepare(config, seq_len=SEQ_LEN, vocab_size=VOCAB, workdir=str(workdir),
                             **kwargs)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  corpus = tmp_path_factory.mktemp("corpus")
  config = _config(_write_corpus(str(corpus)), shard_mb=0.05)  # Several shards per split.
  return _prepare(config, tmp_path_factory.mktemp("work")), config


def test_rows_pack_documents_without_padding(prepared):
  data, config = prepared
  tokenizer = tokenizer_lib.load_tokenizer(data.tokenizer_path, vocab_size=VOCAB)
  files = config.text_files.split(",")
  assert data.metadata["counts"]["units"] == len(files) == 2  # Small files: a unit each.
  for split in prepared_lib.SPLITS:
    rows = np.concatenate(data.shards(split))
    assert rows.shape == (data.num_rows(split), SEQ_LEN) and rows.dtype == np.int32
    assert (rows[:, 0] == special_tokens.CLS_ID).all()
    assert (rows[:, -1] == special_tokens.SEP_ID).all()
    assert not (rows == special_tokens.PAD_ID).any()
    # The rows' bodies are each unit's documents of the split, each followed by [SEP], in
    # order, less the unit's last tokens that do not fill a row.
    expected, dropped = [], 0
    for path in files:
      docs = list(sources.text_documents([path], "blank_line", 1 << 20, sources.SourceStats()))
      in_split = [d for d in docs if work_units.is_eval(d, 0.1) == (split == "eval")]
      stream = [t for d in in_split for t in tokenizer.encode(d) + [special_tokens.SEP_ID]]
      kept = len(stream) // (SEQ_LEN - 2) * (SEQ_LEN - 2)
      expected += stream[:kept]
      dropped += len(stream) - kept
    assert rows[:, 1:-1].reshape(-1).tolist() == expected
    assert dropped == data.metadata["splits"][split]["dropped_tail_tokens"]
    assert dropped < len(files) * (SEQ_LEN - 2)
  assert len(data.metadata["splits"]["train"]["shards"]) > 2
  assert data.num_rows("eval") > 0


def test_eval_documents_held_out(prepared):
  data, _ = prepared
  train = {tuple(r) for r in np.concatenate(data.shards("train"))[:, 1:-1]}
  held_out = {tuple(r) for r in np.concatenate(data.shards("eval"))[:, 1:-1]}
  assert not train & held_out
  splits = data.metadata["splits"]
  assert splits["train"]["documents"] + splits["eval"]["documents"] == 120


def test_rerun_is_a_noop(prepared):
  data, config = prepared
  files = sorted(os.listdir(data.directory))
  mtimes = [os.stat(os.path.join(data.directory, f)).st_mtime_ns for f in files]
  again = _prepare(_config(config.text_files.split(","), shard_mb=0.05,
                           prepared_dir=data.directory), "/unused")
  assert again.metadata == data.metadata
  assert again.fingerprint == data.fingerprint
  assert sorted(os.listdir(data.directory)) == files
  assert [os.stat(os.path.join(data.directory, f)).st_mtime_ns for f in files] == mtimes


def test_changed_inputs_are_an_error(prepared, tmp_path):
  data, config = prepared
  config = _config(config.text_files.split(","), prepared_dir=data.directory)
  other_layout = _prepare(_config(config.text_files.split(",")), tmp_path / "other")
  assert len(other_layout.metadata["splits"]["train"]["shards"]) == 2  # One per unit.
  assert other_layout.fingerprint == data.fingerprint
  other_rows = prepare_lib.prepare(_config(config.text_files.split(",")), seq_len=64,
                                   vocab_size=VOCAB, workdir=str(tmp_path / "longer"))
  assert other_rows.fingerprint != data.fingerprint
  with pytest.raises(ValueError, match="seq_len: prepared 32, now 64"):
    prepare_lib.prepare(config, seq_len=64, vocab_size=VOCAB, workdir=str(tmp_path))
  with pytest.raises(ValueError, match="vocab_size: prepared 256, now 512"):
    prepare_lib.prepare(config, seq_len=SEQ_LEN, vocab_size=512, workdir=str(tmp_path))
  with pytest.raises(ValueError, match="eval_fraction"):
    _prepare(_config(config.text_files.split(","), prepared_dir=data.directory,
                     eval_fraction=0.5), tmp_path)


def test_files_are_identified_by_content_not_mtime(tmp_path, monkeypatch):
  path = _write_corpus(str(tmp_path), num_chapters=40, files=1)[0]
  config = _config([path])
  data = _prepare(config, tmp_path)
  later = os.stat(path).st_mtime_ns + 10**9
  os.utime(path, ns=(later, later))  # A copy or a touch: same bytes, new mtime.
  again = _prepare(config, tmp_path)
  assert again.metadata["inputs"] == data.metadata["inputs"]
  assert again.metadata["splits"] == data.metadata["splits"]
  assert again.fingerprint == data.fingerprint
  # The new mtime is recorded, so the next start does not hash the file again.
  assert again.metadata["file_stats"][0][2] == later
  assert prepared_lib.load_prepared(again.directory).metadata == again.metadata
  hashed = []
  monkeypatch.setattr(input_identity, "sha256_file",
                      lambda p, files=None: hashed.append(p) or "not-read")
  assert _prepare(config, tmp_path).metadata == again.metadata
  assert hashed == []
  monkeypatch.undo()
  with open(path, "r+b") as f:  # Same size, other content.
    first = f.read(1)
    f.seek(0)
    f.write(b"X" if first != b"X" else b"Y")
  with pytest.raises(ValueError, match="files: prepared"):
    _prepare(config, tmp_path)


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
  config = _config(_write_corpus(str(tmp_path), num_chapters=40, files=1))
  work = tmp_path / "work"
  real_dump = json.dump

  def crash(*args, **kwargs):
    raise KeyboardInterrupt("killed while writing metadata")

  monkeypatch.setattr(json, "dump", crash)
  with pytest.raises(KeyboardInterrupt):
    _prepare(config, work)
  assert sorted(os.listdir(work)) == ["data.lock"]  # No shards anywhere.
  with pytest.raises(FileNotFoundError, match="did not finish"):
    prepared_lib.load_prepared(str(work / "data"))
  monkeypatch.setattr(json, "dump", real_dump)
  # A killed run (no cleanup at all) leaves its temporary directory: the next run clears it.
  (work / "data.incomplete-killed").mkdir()
  data = _prepare(config, work)
  assert sorted(os.listdir(work)) == ["data", "data.lock"]
  assert prepared_lib.load_prepared(data.directory).metadata == data.metadata


def test_prepared_dir_empty_or_foreign(tmp_path):
  config = _config(_write_corpus(str(tmp_path), num_chapters=40, files=1))
  (tmp_path / "empty").mkdir()
  config.prepared_dir = str(tmp_path / "empty")
  assert _prepare(config, "/unused").num_rows("train") > 0
  (tmp_path / "foreign").mkdir()
  (tmp_path / "foreign" / "notes.txt").write_text("mine")
  config.prepared_dir = str(tmp_path / "foreign")
  with pytest.raises(FileExistsError, match="not empty but has no metadata.json"):
    _prepare(config, "/unused")
  assert os.listdir(tmp_path / "foreign") == ["notes.txt"]


def test_corpus_too_small_for_one_batch(tmp_path):
  config = _config(_write_corpus(str(tmp_path), num_chapters=40, files=1))
  with pytest.raises(ValueError, match=r"gives \d+ training sequences of 32 tokens.*"
                                       r"one global batch of 100000"):
    _prepare(config, tmp_path / "work", batch_size=100_000)


def test_corpus_too_small_for_one_row(tmp_path):
  (tmp_path / "t.txt").write_text("word\n" * 3)
  tokenizer = _tokenizer(tmp_path)
  config = _config([str(tmp_path / "t.txt")], tokenizer_path=tokenizer)
  with pytest.raises(ValueError, match="0 training sequences of 32 tokens"):
    _prepare(config, tmp_path / "work")


def _tokenizer(tmp_path):
  corpus = tmp_path / "tokenizer_corpus"
  corpus.mkdir()
  with open(_write_corpus(str(corpus), num_chapters=40, files=1)[0]) as f:
    text = f.read().split("\n")
  path = str(tmp_path / "given.model")
  tokenizer_lib.train_tokenizer(text, path, vocab_size=VOCAB)
  return path


def test_given_tokenizer_is_reused_and_checked(tmp_path):
  given = _tokenizer(tmp_path)
  config = _config(_write_corpus(str(tmp_path), num_chapters=40, files=1),
                   tokenizer_path=given)
  data = _prepare(config, tmp_path / "work")
  assert data.metadata["tokenizer"]["sha256"] == input_identity.sha256_file(given)
  with pytest.raises(ValueError, match=f"{VOCAB} pieces but config.model.vocab_size is 512"):
    prepare_lib.prepare(config, seq_len=SEQ_LEN, vocab_size=512, workdir=str(tmp_path / "w2"))


def test_only_empty_or_bad_files(tmp_path):
  (tmp_path / "empty.txt").write_bytes(b"")
  (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\n\xc3\x28\n")
  config = _config([str(tmp_path / "empty.txt"), str(tmp_path / "bad.txt")],
                   tokenizer_path=_tokenizer(tmp_path))
  with pytest.raises(errors.InputError, match=r"empty\.txt, .*bad\.txt hold no text \(1 empty "
                                              "files, 2 lines skipped as not UTF-8"):
    _prepare(config, tmp_path / "work")


def test_skips_are_counted_in_metadata(tmp_path):
  path = _write_corpus(str(tmp_path), num_chapters=40, files=1)[0]
  with open(path, "ab") as f:
    f.write(b"\n\nbad \xff bytes\n" + b"long " * 1000 + b"\nfine\n")
  (tmp_path / "empty.txt").write_bytes(b"")
  config = _config([path, str(tmp_path / "empty.txt")], max_line_bytes=1000)
  counts = _prepare(config, tmp_path / "work").metadata["counts"]
  assert (counts["skipped_non_utf8_lines"], counts["skipped_long_lines"],
          counts["empty_files"], counts["files"]) == (1, 1, 1, 2)


def test_missing_path(tmp_path):
  with pytest.raises(FileNotFoundError, match="matches no file"):
    _prepare(_config([str(tmp_path / "nope.txt")]), tmp_path)


def test_cli_prepares_tiny_preset_on_bundled_sample(tmp_path):
  command = [sys.executable, "-m", "amos_jax.data.prepare", "--config=configs/tiny.py",
             f"--workdir={tmp_path}"]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
  assert result.returncode == 0, result.stderr[-2000:]
  data = prepared_lib.load_prepared(str(tmp_path / "data"))
  assert data.seq_len == 64 and data.vocab_size == 4096
  assert data.num_rows("train") > 10_000 and data.num_rows("eval") > 0


def test_concurrent_preparations_take_turns(tmp_path):
  config = _config(_write_corpus(str(tmp_path), num_chapters=40, files=1))
  results, errors = [], []

  def run():
    try:
      results.append(_prepare(config, tmp_path / "work"))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=run) for _ in range(2)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(timeout=60)
  assert not errors and len(results) == 2
  assert results[0].metadata == results[1].metadata
