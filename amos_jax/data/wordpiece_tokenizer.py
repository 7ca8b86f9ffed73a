"""BERT's and ELECTRA's WordPiece tokenizer, through the `tokenizers` library
(requirements-hf.txt), with the ids transformers gives.

A checkpoint directory holds `tokenizer.json` (the whole pipeline, as transformers saves it)
or only `vocab.txt` with `tokenizer_config.json` (BERT's normaliser, lower-casing as
do_lower_case says). The specials are the vocabulary's [PAD] [UNK] [CLS] [SEP] [MASK]; a pair
is `[CLS] a [SEP] b [SEP]`.
"""

import dataclasses
import hashlib
import json
import os
from typing import Any, Iterable, Sequence

from amos_jax import errors
from amos_jax import special_tokens

KIND = "wordpiece"
TOKENIZER_JSON = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG = "tokenizer_config.json"
_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclasses.dataclass(frozen=True)
class WordPieceTokenizer:
  """Same methods as data.tokenizer.Tokenizer, over a `tokenizers.Tokenizer`."""
  backend: Any  # tokenizers.Tokenizer
  special: special_tokens.SpecialTokens
  kind: str = KIND

  @property
  def vocab_size(self) -> int:
    return self.backend.get_vocab_size(with_added_tokens=True)

  def save(self, directory: str) -> list[str]:
    """Writes tokenizer.json (the whole pipeline) into `directory`; returns the file names."""
    self.backend.save(os.path.join(directory, TOKENIZER_JSON))
    return [TOKENIZER_JSON]

  def encode(self, text: str) -> list[int]:
    """Token ids of `text`, without [CLS]/[SEP]."""
    return self.backend.encode(text, add_special_tokens=False).ids

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids and each token's (start, end) character span in `text`."""
    encoding = self.backend.encode(text, add_special_tokens=False)
    return encoding.ids, [tuple(span) for span in encoding.offsets]

  def encode_batch(self, texts: Sequence[str], num_threads: int = 0) -> list[list[int]]:
    del num_threads  # tokenizers parallelises by itself.
    return [encoding.ids for encoding in
            self.backend.encode_batch(list(texts), add_special_tokens=False)]

  def decode(self, ids: Iterable[int]) -> str:
    return self.backend.decode([int(i) for i in ids], skip_special_tokens=True)

  def vocab_sha256(self) -> str:
    digest = hashlib.sha256()
    for piece, index in sorted(self.backend.get_vocab(with_added_tokens=True).items(),
                               key=lambda item: item[1]):
      digest.update(f"{piece}\t{index}\n".encode("utf-8"))
    return digest.hexdigest()


def _read_json(path: str) -> dict:
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise errors.InputError(f"{path} is not valid JSON ({e}).") from e


def _from_vocab(directory: str):
  from tokenizers.implementations import BertWordPieceTokenizer
  config_path = os.path.join(directory, TOKENIZER_CONFIG)
  config = _read_json(config_path) if os.path.isfile(config_path) else {}
  lowercase = config.get("do_lower_case", True)  # BertTokenizer's default.
  return BertWordPieceTokenizer(
      os.path.join(directory, VOCAB_FILE), lowercase=lowercase,
      strip_accents=config.get("strip_accents"),
      handle_chinese_chars=config.get("tokenize_chinese_chars", True))._tokenizer


def load(directory: str, vocab_size: int | None = None) -> WordPieceTokenizer:
  """The WordPiece tokenizer of `directory` (tokenizer.json, else vocab.txt)."""
  try:
    import tokenizers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise errors.InputError(
        f"{directory} holds a WordPiece tokenizer, which amos_jax reads with the `tokenizers` "
        "library: pip install -r requirements-hf.txt -c requirements.txt.") from e
  json_path = os.path.join(directory, TOKENIZER_JSON)
  if os.path.isfile(json_path):
    try:
      backend = tokenizers.Tokenizer.from_file(json_path)
    except Exception as e:  # tokenizers raises its own exception type for malformed files.
      raise errors.InputError(f"{json_path} is not a tokenizers file ({e}).") from e
    source = json_path
  elif os.path.isfile(os.path.join(directory, VOCAB_FILE)):
    backend = _from_vocab(directory)
    source = os.path.join(directory, VOCAB_FILE)
  else:
    raise FileNotFoundError(
        f"No {TOKENIZER_JSON} or {VOCAB_FILE} in {directory}: a BERT or ELECTRA checkpoint "
        "directory needs its tokenizer files (tokenizer.save_pretrained(DIR) writes them).")
  # A saved pipeline may carry truncation or padding for a model's inputs: amos_jax cuts and
  # pads rows itself, and must see every token of a document.
  backend.no_truncation()
  backend.no_padding()
  ids = {token: backend.token_to_id(token) for token in _SPECIALS}
  missing = [token for token, index in ids.items() if index is None]
  if missing:
    raise errors.InputError(f"{source} has no {missing}: not a BERT/ELECTRA WordPiece "
                            "vocabulary.")
  size = backend.get_vocab_size(with_added_tokens=True)
  if vocab_size is not None and size > vocab_size:
    raise errors.InputError(f"{source} has {size} tokens but the model's embedding has "
                            f"{vocab_size} rows: not this checkpoint's tokenizer.")
  special = special_tokens.SpecialTokens(
      pad=ids["[PAD]"], unk=ids["[UNK]"], cls=ids["[CLS]"], sep=ids["[SEP]"],
      mask=ids["[MASK]"], pair_separator=(ids["[SEP]"],))
  return WordPieceTokenizer(backend, special)
