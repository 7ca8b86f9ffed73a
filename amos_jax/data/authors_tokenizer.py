"""The AMOS/COCO-LM authors' tokenizer: their pre-tokenisation, SentencePiece pieces, and ids
from a fairseq dictionary (dict.txt).

Behaviour read from their public code (microsoft/AMOS, huggingface/amos/tokenization_amos.py
and tokenization_utils.py; fairseq's sentencepiece_bpe.py does the same):
  1. text is stripped; `` and '' become ", curly quotes and the acute accent ' or ",
     em and en dashes -;
  2. each whitespace-separated token loses a leading run of punctuation and a trailing one as
     words of their own (inner punctuation stays: "don't", "1,000", "U.S" + ".");
  3. split contractions are joined again ("Don ' t" -> "Don 't");
  4. SentencePiece pieces of the words joined by spaces; a lone "▁" piece is dropped when it
     is last or the next piece starts with punctuation;
  5. pieces map through the dictionary: <s>=0 <pad>=1 </s>=2 <unk>=3, dict.txt's symbols in
     file order, <mask> last; a piece not in it is <unk>.
A text is `<s> a </s>`, a pair `<s> a </s> </s> b </s>` (RoBERTa's layout).

Steps 1-5 live in authors_pieces.py, which the Hugging Face export also ships to its
transformers tokenizer, so both give the same ids. encode_with_offsets maps each token back to
the characters of the original text it was rewritten from, so SQuAD answers come back as exact
substrings of the context.
"""

import dataclasses
import hashlib
import itertools
import os
import re
import shutil
from typing import Iterable, Sequence

import sentencepiece as spm

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.data import authors_pieces
from amos_jax.data import tokenizer as sentencepiece_tokenizer

KIND = "authors_sentencepiece"
SENTENCEPIECE_FILE = authors_pieces.SENTENCEPIECE_FILE
DICTIONARY_FILE = authors_pieces.DICTIONARY_FILE

# Step 1 turns `` and '' (two characters) into one "; every other rewrite is one character for
# one, and steps 2-3 only add, remove or move spaces. So the non-space characters handed to
# SentencePiece come, in order, from the matches of this pattern in the original text (\S and
# str.split agree on what is whitespace: both use str.isspace's definition).
_SOURCE_CHARACTER = re.compile(r"``|''|\S")


@dataclasses.dataclass(frozen=True)
class AuthorsTokenizer:
  """Same methods as data.tokenizer.Tokenizer, with the authors' ids."""
  sentencepiece_path: str
  dictionary_path: str
  processor: spm.SentencePieceProcessor
  index: dict
  special: special_tokens.SpecialTokens
  kind: str = KIND

  @property
  def vocab_size(self) -> int:
    """Ids the dictionary gives, <mask> included."""
    return max(self.index.values()) + 1

  def save(self, directory: str) -> list[str]:
    """Copies sp.model and dict.txt into `directory`; returns the file names."""
    shutil.copyfile(self.sentencepiece_path, os.path.join(directory, SENTENCEPIECE_FILE))
    shutil.copyfile(self.dictionary_path, os.path.join(directory, DICTIONARY_FILE))
    return [SENTENCEPIECE_FILE, DICTIONARY_FILE]

  def pieces(self, text: str) -> list[str]:
    """Steps 1-4 of the module docstring."""
    return authors_pieces.pieces(self.processor, text)

  def _id(self, piece: str) -> int:
    return self.index.get(authors_pieces.symbol(piece), self.special.unk)

  def encode(self, text: str) -> list[int]:
    """Token ids of `text`, without <s> and </s>."""
    return [self._id(piece) for piece in self.pieces(text)]

  def encode_batch(self, texts: Sequence[str], num_threads: int = 0) -> list[list[int]]:
    del num_threads  # The pre-tokenisation is Python; SentencePiece's threads would not help.
    return [self.encode(text) for text in texts]

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """The ids of encode(text) and each token's (start, end) character span in `text`.

    A span runs from the first to the last original character its token was rewritten from
    (a `` or an em dash included) and holds no whitespace; a token with no characters of its
    own (a lone "▁", or the first of two pieces SentencePiece's normalisation made from one
    character, as "ﬁ" -> "f" "i") has an empty span where the next characters start.
    """
    line = " ".join(authors_pieces.pre_tokenize(text))
    sources = [match.span() for match in _SOURCE_CHARACTER.finditer(text)]
    # ordinal[k]: the number of non-space characters before position k of the line, which is
    # also the index in `sources` of the next one.
    ordinal = [0, *itertools.accumulate(char != " " for char in line)]
    starts = [start for start, _ in sources] + [sources[-1][1] if sources else 0]
    char_at_byte = sentencepiece_tokenizer.char_index_of_bytes(line)
    pieces = self.processor.encode(line, out_type="proto").pieces
    symbols = [piece.piece for piece in pieces]
    ids, spans = [], []
    for i, piece in enumerate(pieces):
      if authors_pieces.dropped(symbols, i):
        continue
      first = ordinal[char_at_byte[piece.begin]]
      last = ordinal[char_at_byte[piece.end]]  # One past the piece's last non-space character.
      ids.append(self._id(piece.piece))
      spans.append((starts[first], sources[last - 1][1] if first < last else starts[first]))
    return ids, spans

  def decode(self, ids: Iterable[int]) -> str:
    symbols = {index: symbol for symbol, index in self.index.items()}
    specials = {self.special.pad, self.special.cls, self.special.sep, self.special.mask}
    pieces = [symbols.get(int(i), "") for i in ids if int(i) not in specials]
    return self.processor.decode_pieces([piece for piece in pieces if piece])

  def vocab_sha256(self) -> str:
    digest = hashlib.sha256()
    for symbol, index in sorted(self.index.items(), key=lambda item: item[1]):
      digest.update(f"{symbol}\t{index}\n".encode("utf-8"))
    return digest.hexdigest()


def load(directory: str, vocab_size: int | None = None) -> AuthorsTokenizer:
  """The tokenizer of sp.model and dict.txt in `directory`; at most `vocab_size` ids."""
  paths = {name: os.path.join(directory, name) for name in (SENTENCEPIECE_FILE, DICTIONARY_FILE)}
  for name, path in paths.items():
    if not os.path.isfile(path):
      raise FileNotFoundError(
          f"{path} not found: an AMOS/COCO-LM checkpoint comes with its SentencePiece model "
          f"({SENTENCEPIECE_FILE}) and fairseq dictionary ({DICTIONARY_FILE}); copy both from the "
          "release into the checkpoint directory.")
  try:
    processor = spm.SentencePieceProcessor(model_file=paths[SENTENCEPIECE_FILE])
  except (RuntimeError, OSError) as e:
    raise errors.InputError(f"{paths[SENTENCEPIECE_FILE]} is not a SentencePiece model "
                            f"({e}).") from e
  try:
    index = authors_pieces.read_dictionary(paths[DICTIONARY_FILE])
  except ValueError as e:
    raise errors.InputError(str(e)) from e
  num_ids = max(index.values()) + 1
  if vocab_size is not None and num_ids > vocab_size:
    raise errors.InputError(
        f"{paths[DICTIONARY_FILE]} gives {num_ids} ids (with the specials and <mask>) but "
        f"the model's embedding has {vocab_size} rows: not this checkpoint's dictionary.")
  special = special_tokens.SpecialTokens(
      pad=index["<pad>"], unk=index["<unk>"], cls=index["<s>"], sep=index["</s>"],
      mask=index["<mask>"], pair_separator=(index["</s>"], index["</s>"]))
  return AuthorsTokenizer(os.path.abspath(paths[SENTENCEPIECE_FILE]),
                          os.path.abspath(paths[DICTIONARY_FILE]), processor, index, special)
