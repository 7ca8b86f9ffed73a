"""A compressed slice of the pretraining text and the SST-2 files, for a machine without them.

python benchmarks/corpus_slice.py --out=gpu_data [--text_megabytes=120] \
  [--tokenizer=/tmp/amos_q/data/tokenizer.model]

The device machine receives the repository alone (64 MiB at most), not ../shared, so
benchmarks/gpu_quality.sh reads what this writes into an ignored folder of the checkout
(`gpu_data/` is in .gitignore; name it in the device tool's `carry`):

  gpu_data/text/slice.txt.gz   whole documents, taken in turn from every --text_files
                               file, blank-line separated, until --text_megabytes of text
  gpu_data/sst2/               train.tsv and dev.tsv, copied
  gpu_data/tokenizer.model     --tokenizer, if given: preparation there then only encodes
  gpu_data/slice.json          what was taken from where

The folder is written whole or not at all (data/atomic_dir.py). Nothing here is committed:
the text keeps its sources' licenses (../shared/data/README.md).
"""

import gzip
import json
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from absl import app, flags

from amos_jax.data import atomic_dir
from amos_jax.data import sources
from configs import default

SHARED_DATA = os.path.join(REPO, "..", "shared", "data")

flags.DEFINE_string("out", os.path.join(REPO, "gpu_data"), "The folder to write (must not exist "
                    "or be empty).")
flags.DEFINE_string("text_files", ",".join(
    os.path.join(SHARED_DATA, pattern) for pattern in ("wikipedia/*.txt.gz", "books/*.txt.gz")),
    "Pretraining text: comma-separated files or globs, documents separated by blank lines.")
# 120 MB of text compress to about 46 MB: with SST-2 (3.8 MB), the repository (2 MB) and a
# few wheels, the device tool's 64 MiB still has room.
flags.DEFINE_float("text_megabytes", 120.0, "Uncompressed text to take, in MB (0.38 of it once "
                   "compressed).")
flags.DEFINE_string("sst2_dir", os.path.join(SHARED_DATA, "sst2"),
                    "Holds train.tsv and dev.tsv.")
flags.DEFINE_string("tokenizer", None, "A SentencePiece .model to bring along (optional).")
FLAGS = flags.FLAGS


def write_text_slice(paths: list[str], out_path: str, budget_bytes: int) -> dict:
  """Takes whole documents until `budget_bytes` of text, each from the file with the fewest
  bytes taken so far, so every file gives about as much text (Wikipedia's articles and the
  books' paragraphs differ 100x in length); returns the documents and bytes per file."""
  # As preparation reads them: the same lines skipped (not UTF-8, over max_line_bytes).
  max_line_bytes = default.data_config().max_line_bytes
  readers = {path: sources.text_documents([path], "blank_line", max_line_bytes,
                                          sources.SourceStats()) for path in paths}
  taken = {path: {"documents": 0, "bytes": 0} for path in paths}
  total = 0
  with gzip.open(out_path, "wt", encoding="utf-8", compresslevel=6) as out:
    while readers and total < budget_bytes:
      path = min(readers, key=lambda p: taken[p]["bytes"])
      document = next(readers[path], None)
      if document is None:
        del readers[path]  # This file is used up; the others go on.
        continue
      out.write(document + "\n\n")
      size = len(document.encode("utf-8")) + 2
      taken[path]["documents"] += 1
      taken[path]["bytes"] += size
      total += size
  return taken


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  paths = sources.resolve_text_files(FLAGS.text_files)
  for name in ("train.tsv", "dev.tsv"):
    if not os.path.isfile(os.path.join(FLAGS.sst2_dir, name)):
      raise app.UsageError(f"--sst2_dir={FLAGS.sst2_dir}: has no {name}.")
  if FLAGS.tokenizer and not os.path.isfile(FLAGS.tokenizer):
    raise app.UsageError(f"--tokenizer={FLAGS.tokenizer}: no such file.")
  out = os.path.abspath(FLAGS.out)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  with atomic_dir.exclusive_lock(out + ".lock"), atomic_dir.write_whole(
      out, complete_marker="slice.json", setting="--out") as staging:
    os.makedirs(os.path.join(staging, "text"))
    slice_path = os.path.join(staging, "text", "slice.txt.gz")
    taken = write_text_slice(paths, slice_path, int(FLAGS.text_megabytes * 1e6))
    os.chmod(staging, 0o755)  # mkdtemp's 0o700 would keep it from other users.
    os.makedirs(os.path.join(staging, "sst2"))
    for name in ("train.tsv", "dev.tsv"):  # copyfile: the copies are writable, deletable.
      shutil.copyfile(os.path.join(FLAGS.sst2_dir, name), os.path.join(staging, "sst2", name))
    if FLAGS.tokenizer:
      shutil.copyfile(FLAGS.tokenizer, os.path.join(staging, "tokenizer.model"))
    record = {"text_files": taken, "text_bytes": sum(t["bytes"] for t in taken.values()),
              "compressed_bytes": os.path.getsize(slice_path),
              "sst2_dir": os.path.abspath(FLAGS.sst2_dir), "tokenizer": FLAGS.tokenizer}
    with open(os.path.join(staging, "slice.json"), "w", encoding="utf-8") as f:
      json.dump(record, f, indent=1)
  print(f"Wrote {out}: {record['text_bytes'] / 1e6:.1f} MB of text in "
        f"{sum(t['documents'] for t in taken.values())} documents "
        f"({record['compressed_bytes'] / 1e6:.1f} MB compressed) from {len(paths)} files.")


if __name__ == "__main__":
  app.run(main)
