"""The tokenizers amos_jax works with, by kind: its own SentencePiece model, the AMOS authors'
SentencePiece plus fairseq dictionary, and BERT/ELECTRA WordPiece.

Every kind has the methods of data.tokenizer.Tokenizer (encode, encode_with_offsets,
encode_batch, decode, vocab_size, vocab_sha256), a `special` record of its special ids, a
`kind`, and `save(directory)`, which writes its files into a directory (a workdir, prepared
data, an export) and returns their names; `load` and `detect` read them back.
"""

import os

from amos_jax import errors
from amos_jax.data import authors_tokenizer
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.data import wordpiece_tokenizer

SENTENCEPIECE = "sentencepiece"
# kind -> the files `save` writes, which `detect` looks for.
FILES = {
    SENTENCEPIECE: (tokenizer_lib.MODEL_FILE,),
    authors_tokenizer.KIND: (authors_tokenizer.SENTENCEPIECE_FILE,
                             authors_tokenizer.DICTIONARY_FILE),
    wordpiece_tokenizer.KIND: (wordpiece_tokenizer.TOKENIZER_JSON,),
}
KINDS = tuple(FILES)


def load(kind: str, directory: str, vocab_size: int | None = None):
  """The tokenizer of `kind` whose files `save` wrote into `directory`."""
  if kind == SENTENCEPIECE:
    return tokenizer_lib.load_tokenizer(os.path.join(directory, tokenizer_lib.MODEL_FILE),
                                        vocab_size)
  if kind == authors_tokenizer.KIND:
    return authors_tokenizer.load(directory, vocab_size)
  if kind == wordpiece_tokenizer.KIND:
    return wordpiece_tokenizer.load(directory, vocab_size)
  raise errors.InputError(f"Tokenizer kind {kind!r} is not one of {list(KINDS)}.")


def detect(directory: str) -> str:
  """The kind whose files `directory` holds (amos_jax's own model first)."""
  for kind, names in FILES.items():
    if all(os.path.isfile(os.path.join(directory, name)) for name in names):
      return kind
  expected = " or ".join(" + ".join(names) for names in FILES.values())
  raise FileNotFoundError(f"No tokenizer in {directory}: expected {expected}.")
