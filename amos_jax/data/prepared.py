"""The reader's side of a prepared directory: its layout, metadata.json and memory-mapped shards.

Written by prepare.py or beam_prepare.py (the layout is in prepare.py's docstring); read by
pipeline.py, the training loop and benchmarks. Only a complete directory has a
metadata.json, written last, so finding one means every shard it lists is there.
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from amos_jax import atomic_file
from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data import tokenizer_kinds

# 2: text files identified by content hash, not mtime. 3: rows packed within work units.
FORMAT_VERSION = 3
METADATA_FILE = "metadata.json"
# Where a Beam preparation keeps its plan and finished units until metadata.json is written.
UNFINISHED_DIR = "_unfinished"
TOKENIZER_FILE = tokenizer_lib.MODEL_FILE
SPLITS = ("train", "eval")


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """A complete prepared directory, as described by its metadata.json."""
  directory: str
  metadata: dict
  # Seconds spent by the call that prepared it ({"tokenizer_seconds", "units_seconds"});
  # None when found prepared. Kept out of metadata.json, which must be the same bytes at
  # every run.
  timing: dict | None = dataclasses.field(default=None, compare=False)

  @property
  def tokenizer_path(self) -> str:
    """The SentencePiece .model file (of the "sentencepiece" kind)."""
    return os.path.join(self.directory, self.metadata["tokenizer"]["file"])

  @property
  def tokenizer_kind(self) -> str:
    """data/tokenizer_kinds.py's kind: amos_jax's own SentencePiece model, or a converted
    checkpoint's tokenizer that pretraining continues with."""
    return self.metadata["tokenizer"].get("kind", "sentencepiece")

  def load_tokenizer(self):
    """The tokenizer the rows were made with; workdirs and exports copy it (`save`)."""
    return tokenizer_kinds.load(self.tokenizer_kind, self.directory, self.vocab_size)

  @property
  def special(self) -> special_tokens.SpecialTokens:
    """The special ids in the rows: [CLS] and [SEP] around each, [PAD] for padding, [MASK]."""
    record = self.metadata["tokenizer"].get("special")
    if record is None:
      return special_tokens.AMOS_JAX
    return special_tokens.SpecialTokens(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in record.items()})

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
    if os.path.isdir(os.path.join(directory, UNFINISHED_DIR)):
      raise FileNotFoundError(
          f"No {METADATA_FILE} in {directory!r}: its Beam preparation has not finished. Run it "
          "again (--config.data.runner=beam) to finish it; finished units are kept.")
    raise FileNotFoundError(
        f"No {METADATA_FILE} in {directory!r}: the data was never prepared there or its "
        "preparation did not finish. Run python -m amos_jax.data.prepare.")
  with open(path) as f:
    metadata = parse_metadata(f.read(), path)
  return PreparedData(directory=os.path.abspath(directory), metadata=metadata)


def parse_metadata(text: str, path: str) -> dict:
  """metadata.json's content from its text; an error if another format version wrote it."""
  metadata = json.loads(text)
  if metadata.get("format_version") != FORMAT_VERSION:
    raise errors.InputError(f"{path} has format {metadata.get('format_version')}, this code reads "
                            f"{FORMAT_VERSION}: prepare the data again.")
  return metadata


def dump_metadata(metadata: dict, f):
  """Writes metadata.json's text to the text file `f`: the one encoding both drivers use."""
  json.dump(metadata, f, indent=1)


def write_metadata(directory: str, metadata: dict):
  """Writes metadata.json whole: readers see the old file or the new one, never a part."""
  with atomic_file.replacing(os.path.join(directory, METADATA_FILE)) as f:
    dump_metadata(metadata, f)
