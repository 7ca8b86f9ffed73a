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

encode_with_offsets maps each token back to the characters of the original text it was
rewritten from, so SQuAD answers come back as exact substrings of the context.
"""

import dataclasses
import hashlib
import itertools
import os
import re
import shutil
import unicodedata
from typing import Iterable, Sequence

import sentencepiece as spm

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.data import tokenizer as sentencepiece_tokenizer

KIND = "authors_sentencepiece"
SENTENCEPIECE_FILE = "sp.model"
DICTIONARY_FILE = "dict.txt"

# fairseq's four specials first; dict.txt may name them with either spelling.
_FIXED = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
_ALIASES = {"[CLS]": "<s>", "[PAD]": "<pad>", "[SEP]": "</s>", "[UNK]": "<unk>",
            "[MASK]": "<mask>"}
_TYPOGRAPHY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u00b4": "'", "\u201c": '"',
                             "\u201d": '"', "\u2014": "-", "\u2013": "-"})
_CONTRACTIONS = ((re.compile(r"' ([smdSMDtT])\b"), r"'\1"), (re.compile(r"' (ll|re|ve)\b"), r"'\1"),
                 (re.compile(r"' (LL|RE|VE)\b"), r"'\1 "))
_SPACE = "\u2581"
# Step 1 turns `` and '' (two characters) into one "; every other rewrite is one character for
# one, and steps 2-3 only add, remove or move spaces. So the non-space characters handed to
# SentencePiece come, in order, from the matches of this pattern in the original text (\S and
# str.split agree on what is whitespace: both use str.isspace's definition).
_SOURCE_CHARACTER = re.compile(r"``|''|\S")


def is_punctuation(char: str) -> bool:
  """ASCII symbols and punctuation, or any Unicode punctuation category."""
  code = ord(char)
  return (33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
          or unicodedata.category(char).startswith("P"))


def _split_punctuation(token: str) -> list[str]:
  """A leading and a trailing run of punctuation as words of their own; an all-punctuation
  token stays whole."""
  if len(token) < 2:
    return [token]
  start = 0
  while start < len(token) and is_punctuation(token[start]):
    start += 1
  if start == len(token):
    return [token]
  end = len(token)
  while end > start and is_punctuation(token[end - 1]):
    end -= 1
  return [part for part in (token[:start], token[start:end], token[end:]) if part]


def _dropped(pieces: Sequence[str], i: int) -> bool:
  """Step 4's rule: a lone "▁" goes when it is last or the next piece starts with
  punctuation."""
  return pieces[i] == _SPACE and (i + 1 == len(pieces) or is_punctuation(pieces[i + 1][0]))


def pre_tokenize(text: str) -> list[str]:
  """Steps 1-3 of the module docstring: the words handed to SentencePiece."""
  text = text.strip().replace("``", '"').replace("''", '"').translate(_TYPOGRAPHY)
  line = " ".join(part for token in text.split() for part in _split_punctuation(token))
  for pattern, replacement in _CONTRACTIONS:
    line = pattern.sub(replacement, line)
  return line.split()


def read_dictionary(path: str) -> dict[str, int]:
  """symbol -> id of a fairseq dict.txt ("symbol count" lines), with fairseq's specials first
  and <mask> last."""
  index = dict(_FIXED)
  next_id = len(index)  # Ids are positions: an overwritten symbol leaves its old id unused.
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except UnicodeDecodeError as e:
    raise errors.InputError(f"{path} is not a UTF-8 fairseq dictionary ({e}).") from e
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    symbol, _, count = line.rstrip().rpartition(" ")
    overwrite = count == "#fairseq:overwrite"
    if overwrite:
      symbol = symbol.rpartition(" ")[0]
    if not symbol:
      raise errors.InputError(f"{path}:{number}: expected 'symbol count', got {line!r}.")
    symbol = _ALIASES.get(symbol, symbol)
    if symbol not in index or overwrite:
      index[symbol] = next_id
      next_id += 1
  if "<mask>" not in index:
    index["<mask>"] = next_id
  return index


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
    pieces = self.processor.encode(" ".join(pre_tokenize(text)), out_type=str)
    return [piece for i, piece in enumerate(pieces) if not _dropped(pieces, i)]

  def _id(self, piece: str) -> int:
    return self.index.get(_ALIASES.get(piece, piece), self.special.unk)

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
    line = " ".join(pre_tokenize(text))
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
      if _dropped(symbols, i):
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
  index = read_dictionary(paths[DICTIONARY_FILE])
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
