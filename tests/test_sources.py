"""Sources: file resolution, document splitting, gzip, bad bytes and lines, TFDS offline."""

import dataclasses
import gzip
import random

import ml_collections
import pytest
import tensorflow_datasets as tfds

from amos_jax import errors
from amos_jax.data import sources
from amos_jax.data import work_units
from configs import default


def _read(paths, split="blank_line", max_line_bytes=1 << 20):
  stats = sources.SourceStats()
  return list(sources.text_documents(paths, split, max_line_bytes, stats)), stats


def test_resolve_globs_sorted_and_missing(tmp_path):
  for name in ("b.txt", "a.txt"):
    (tmp_path / name).write_text("x\n")
  assert sources.resolve_text_files(f"{tmp_path}/*.txt, {tmp_path}/a.txt") == [
      str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
  assert sources.resolve_text_files("") == [sources.SAMPLE_PATH]
  with pytest.raises(FileNotFoundError, match="missing"):
    sources.resolve_text_files(f"{tmp_path}/a.txt,{tmp_path}/missing*.txt")


def test_blank_line_and_line_documents(tmp_path):
  path = tmp_path / "c.txt"
  path.write_text("one a\none b\n\n\n two\n\nthree\n")
  docs, stats = _read([str(path)])
  assert docs == ["one a\none b", " two", "three"]
  assert stats.documents == 3
  docs, _ = _read([str(path)], split="line")
  assert docs == ["one a", "one b", " two", "three"]
  with pytest.raises(ValueError, match="document_split"):
    _read([str(path)], split="page")


def test_gzip_read_transparently(tmp_path):
  path = tmp_path / "c.txt.gz"
  with gzip.open(path, "wt") as f:
    f.write("alpha\n\nbeta\n")
  assert _read([str(path)])[0] == ["alpha", "beta"]


def test_corrupt_gzip_is_a_clear_error(tmp_path):
  path = tmp_path / "c.txt.gz"
  path.write_bytes(b"not gzip at all\n")
  with pytest.raises(ValueError, match="c.txt.gz is not a readable gzip file"):
    _read([str(path)])
  with gzip.open(path, "wb") as f:
    f.write(b"")
  assert _read([str(path)])[1].empty_files == 1


def test_non_utf8_lines_skipped_and_counted(tmp_path):
  path = tmp_path / "c.txt"
  path.write_bytes(b"good one\nbad \xff\xfe line\ngood two\n\nnext\n")
  docs, stats = _read([str(path)])
  assert docs == ["good one\ngood two", "next"]
  assert stats.skipped_non_utf8_lines == 1
  assert stats.skips() == {"skipped_non_utf8_lines": 1}


def test_enormous_line_skipped_in_bounded_memory(tmp_path):
  path = tmp_path / "c.txt"
  path.write_bytes(b"before\n" + b"x" * (3 << 20) + b"\nafter\n" + b"y" * (2 << 20))
  docs, stats = _read([str(path)], split="line", max_line_bytes=1000)
  assert docs == ["before", "after"]
  assert stats.skipped_long_lines == 2
  assert stats.text_bytes == path.stat().st_size


def test_empty_file_counted(tmp_path):
  (tmp_path / "empty.txt").write_bytes(b"")
  (tmp_path / "full.txt").write_text("text\n")
  docs, stats = _read([str(tmp_path / "empty.txt"), str(tmp_path / "full.txt")])
  assert docs == ["text"] and stats.empty_files == 1 and stats.files == 2


class TinyText(tfds.core.GeneratorBasedBuilder):
  """A local TFDS builder: prepared offline in a temporary data_dir."""
  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
        {"text": tfds.features.Text(), "title": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i in range(5):
      yield i, {"text": f"Document number {i}.\nSecond line.", "title": f"t{i}"}


def _tfds_config(data_dir, **overrides):
  config = default.data_config()
  config.update(dict(source="tfds", tfds_name="tiny_text", tfds_data_dir=str(data_dir)),
                **overrides)
  return config


def test_tfds_local_builder_without_download(tmp_path):
  with pytest.raises(FileNotFoundError, match="not prepared.*never download"):
    list(sources.documents(_tfds_config(tmp_path), sources.SourceStats()))
  TinyText(data_dir=str(tmp_path)).download_and_prepare()
  stats = sources.SourceStats()
  docs = list(sources.documents(_tfds_config(tmp_path), stats))
  assert sorted(docs) == [f"Document number {i}.\nSecond line." for i in range(5)]
  assert stats.documents == 5
  # Work units are ranges of the split's examples, about unit_mb of them each.
  config = _tfds_config(tmp_path, unit_mb=0.0001)
  units = work_units.plan_tfds(config)
  bounds = [(u.start, u.end) for u in units]
  assert len(units) > 1 and bounds[0][0] == 0 and bounds[-1][1] == 5
  assert all(end == next_start for (_, end), (next_start, _) in zip(bounds, bounds[1:]))
  unit_stats = sources.SourceStats()
  assert [d for u in units for d in work_units.documents(u, config, unit_stats, None)] == docs
  assert unit_stats == stats
  with pytest.raises(errors.InputError, match="tfds_text_key"):
    list(sources.documents(_tfds_config(tmp_path, tfds_text_key="body"),
                           sources.SourceStats()))


def test_tfds_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=7):
    docs = list(sources.documents(_tfds_config(tmp_path, tfds_name="tiny_text"),
                                  sources.SourceStats()))
  assert len(docs) == 7 and all(isinstance(d, str) and d for d in docs)


def test_unknown_source():
  config = ml_collections.ConfigDict(dict(source="s3"))
  with pytest.raises(ValueError, match="'text' or 'tfds'"):
    sources.documents(config, sources.SourceStats())


@pytest.mark.parametrize("split", ["blank_line", "line"])
def test_ranges_cut_anywhere_read_every_document_once(tmp_path, split):
  """Work units cut files at fixed byte offsets, wherever documents fall."""
  rng = random.Random(0)
  lines = []
  for _ in range(300):
    lines.append(rng.choice(["", "", "  ", "word " * rng.randint(1, 12), "x" * 40,
                             "\xe9t\xe9 \u2003", "bad \udcff"]))
  data = "\n".join(lines).encode("utf-8", "surrogateescape") + b"\n\n\nlast"
  path = tmp_path / "c.txt"
  path.write_bytes(data)
  whole, whole_stats = _read([str(path)], split=split, max_line_bytes=30)
  assert whole_stats.skipped_long_lines and whole_stats.skipped_non_utf8_lines
  for cuts in ([1], [len(data) - 1], sorted(rng.sample(range(1, len(data)), 40)),
               list(range(1, len(data), 7))):
    bounds = [0] + cuts + [None]
    stats, docs = sources.SourceStats(), []
    for start, end in zip(bounds[:-1], bounds[1:]):
      with open(path, "rb") as f:
        docs += sources.range_documents(f, start, end, split, 30, stats)
    assert docs == whole
    assert dataclasses.replace(stats, files=1) == whole_stats
