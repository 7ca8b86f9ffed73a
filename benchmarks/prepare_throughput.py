"""Preparation throughput of either driver, and the rows lost at work-unit ends.

python benchmarks/prepare_throughput.py --text_files='../shared/data/wikipedia/*.txt.gz,../shared/data/books/*.txt.gz'
python benchmarks/prepare_throughput.py --text_files=... --runner=beam \
  --beam_pipeline_options=--direct_running_mode=multi_processing,--direct_num_workers=2

Prepares into a temporary directory (the paper's seq_len 512 and vocabulary 32768 by
default) and prints the text read, the seconds of each step, MB/s and tokens/s of the unit
work (read, tokenize, pack, write) and overall, and what packing within units cost: the rows
that packing the whole stream would have made and per-unit packing did not.
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

# Run as a script, Python puts benchmarks/ on the path; the imports below need the repo root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from amos_jax.data import prepare as prepare_lib  # pylint: disable=g-import-not-at-top
from amos_jax.data.prepared import SPLITS  # pylint: disable=g-import-not-at-top
from configs import default  # pylint: disable=g-import-not-at-top

_TEXT_FILES = flags.DEFINE_string("text_files", "", "Comma-separated text files or globs; "
                                  "empty: the bundled sample.")
_RUNNER = flags.DEFINE_enum("runner", "local", list(prepare_lib.RUNNERS), "data.runner.")
_OPTIONS = flags.DEFINE_string("beam_pipeline_options", "", "With --runner=beam: Beam's "
                               "options, comma-separated.")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 32768, "Tokenizer vocabulary size.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 512, "Tokens per row.")
_UNIT_MB = flags.DEFINE_float("unit_mb", 64.0, "data.unit_mb: text per work unit.")


def main(argv):
  del argv
  config = default.data_config()
  config.update(dict(text_files=_TEXT_FILES.value, runner=_RUNNER.value,
                     unit_mb=_UNIT_MB.value))
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    data = prepare_lib.prepare(config, seq_len=_SEQ_LEN.value, vocab_size=_VOCAB_SIZE.value,
                               workdir=workdir, beam_pipeline_options=_OPTIONS.value)
    seconds = time.perf_counter() - start
  counts, timing, splits = data.metadata["counts"], data.timing, data.metadata["splits"]
  megabytes, tokens = counts["text_bytes"] / 1e6, counts["tokens"]
  print(f"source: {config.text_files or 'bundled sample'}: {megabytes:.1f} MB of text, "
        f"{counts['documents']:,} documents, {tokens:,} tokens, {counts['files']} files in "
        f"{counts['units']} work units")
  print(f"driver: {_RUNNER.value} {_OPTIONS.value}".rstrip())
  print(f"tokenizer: {timing['tokenizer_seconds']:.1f}s (vocabulary {_VOCAB_SIZE.value})")
  units = timing["units_seconds"]
  print(f"units (read, tokenize, pack, write): {units:.1f}s, {megabytes / units:.2f} MB/s, "
        f"{tokens / units:,.0f} tokens/s")
  print(f"overall: {seconds:.1f}s, {megabytes / seconds:.2f} MB/s, {tokens / seconds:,.0f} "
        "tokens/s")
  body = _SEQ_LEN.value - 2
  for split in SPLITS:
    rows, dropped = splits[split]["rows"], splits[split]["dropped_tail_tokens"]
    whole_stream_rows = (rows * body + dropped) // body
    lost = whole_stream_rows - rows
    print(f"{split}: {rows:,} rows of {_SEQ_LEN.value}; packing within units lost {lost} "
          f"rows of {whole_stream_rows:,} ({100 * lost / max(whole_stream_rows, 1):.4f}%), "
          f"{dropped:,} tokens dropped at unit ends")


if __name__ == "__main__":
  app.run(main)
