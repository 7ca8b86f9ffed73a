"""Input pipeline throughput: preparation (MB of text/s, tokens/s) and training reads.

python benchmarks/input_pipeline.py                       # the bundled sample
python benchmarks/input_pipeline.py --text_files=../shared/data/wikitext2/valid.txt

Prints `prepare: ...` lines and `read: N tokens/s`, the tokens delivered as device-ready
batches ({"input_ids": int32 [batch, seq_len]}) by pipeline.train_iterator.
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

# Run as a script, Python puts benchmarks/ on the path; the imports below need the repo root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from amos_jax.data import pipeline  # pylint: disable=g-import-not-at-top
from amos_jax.data import prepare as prepare_lib  # pylint: disable=g-import-not-at-top
from configs import default  # pylint: disable=g-import-not-at-top

_TEXT_FILES = flags.DEFINE_string("text_files", "", "Comma-separated text files or globs; "
                                  "empty: the bundled sample.")
_DOCUMENT_SPLIT = flags.DEFINE_enum("document_split", "blank_line", ["blank_line", "line"],
                                    "What separates documents.")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 4096, "Tokenizer vocabulary size.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 128, "Tokens per row.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Global batch size read.")
_PROCESS_COUNT = flags.DEFINE_integer("process_count", 1, "Hosts the batch is split over; "
                                      "this process reads host 0's slice.")
_READ_SECONDS = flags.DEFINE_float("read_seconds", 5.0, "How long to read batches.")


def main(argv):
  del argv
  config = default.data_config()
  config.text_files = _TEXT_FILES.value
  config.document_split = _DOCUMENT_SPLIT.value
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    data = prepare_lib.prepare(config, seq_len=_SEQ_LEN.value, vocab_size=_VOCAB_SIZE.value,
                               workdir=workdir)
    seconds = time.perf_counter() - start
    counts, timing = data.metadata["counts"], data.timing
    megabytes = counts["text_bytes"] / 1e6
    print(f"source: {config.text_files or 'bundled sample'} ({megabytes:.2f} MB, "
          f"{counts['documents']} documents, {counts['tokens']} tokens; "
          f"{data.num_rows('train')} train + {data.num_rows('eval')} eval rows of "
          f"{data.seq_len})")
    print(f"prepare: {megabytes / seconds:.2f} MB/s, {counts['tokens'] / seconds:,.0f} "
          f"tokens/s overall ({seconds:.2f}s, of which tokenizer training "
          f"{timing['tokenizer_seconds']:.2f}s)")
    encode = timing["units_seconds"]
    print(f"prepare (read, tokenize, pack, write): {megabytes / encode:.2f} MB/s, "
          f"{counts['tokens'] / encode:,.0f} tokens/s")

    iterator = pipeline.train_iterator(
        data, global_batch_size=_BATCH_SIZE.value, seed=0, process_count=_PROCESS_COUNT.value)
    next(iterator)  # Builds the first epoch's permutation and starts the prefetch threads.
    tokens, start = 0, time.perf_counter()
    while time.perf_counter() - start < _READ_SECONDS.value:
      tokens += next(iterator)["input_ids"].size
    seconds = time.perf_counter() - start
    host_batch = _BATCH_SIZE.value // _PROCESS_COUNT.value
    print(f"read batch: [{host_batch}, {data.seq_len}] int32 per host")
    print(f"read: {tokens / seconds:,.0f} tokens/s")


if __name__ == "__main__":
  app.run(main)
