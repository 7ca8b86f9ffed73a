"""The tokenizers a checkpoint can carry, by kind: amos_jax's SentencePiece model, the AMOS
authors' SentencePiece plus fairseq dictionary, and BERT/ELECTRA WordPiece.

Every kind has the methods of data.tokenizer.Tokenizer (encode, encode_with_offsets,
encode_batch, decode, vocab_size, vocab_sha256), a `special` record of its special ids, and
`save(directory)`, which writes its files into a checkpoint directory; `load` reads them back.
"""

import os

from amos_jax import errors
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import authors_tokenizer
from amos_jax.formats import wordpiece_tokenizer

SENTENCEPIECE = "sentencepiece"
KINDS = (SENTENCEPIECE, authors_tokenizer.KIND, wordpiece_tokenizer.KIND)


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
