"""The tokenizer files of a Hugging Face export, so that AutoTokenizer gives the ids amos_jax
gives: tokenizer.json (a `tokenizers` pipeline) for amos_jax's SentencePiece model and for
BERT/ELECTRA's WordPiece, and for the AMOS authors' tokenizer, whose rewriting rules have no
pipeline, its own files and Python code (tokenization_amos_jax.py, write_authors_files).

For amos_jax's SentencePiece model, the `tokenizers` pipeline mirrors SentencePiece's: its
own precompiled normalization (nmt_nfkc), whitespace stripped and collapsed, "▁" for spaces
and before the text, pieces within whitespace-separated words, the unigram model with its
scores, and unknown characters as [UNK]. [CLS] a [SEP] (b [SEP]) are added by a
post-processor.

SentencePiece never produces the special pieces from text: "[MASK]" written in a sentence is
plain characters, as in amos_jax. A unigram model in `tokenizers` would match the piece (its
score is 0, the best), so a pre-tokenizer step splits each special token written as text
before its closing "]" (the only difference: SentencePiece could use a piece spanning the
name's last letter and the "]" there, or fuse both into one [UNK] if neither is in the
vocabulary), and the tokenizer config sets `split_special_tokens` so that added tokens are
not matched in text either.
"""

import json
import os
import shutil

from amos_jax import errors
from amos_jax import special_tokens
from amos_jax.data import authors_pieces

TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"

_SPECIALS = (
    (special_tokens.PAD_ID, special_tokens.PAD),
    (special_tokens.UNK_ID, special_tokens.UNK),
    (special_tokens.CLS_ID, special_tokens.CLS),
    (special_tokens.SEP_ID, special_tokens.SEP),
    (special_tokens.MASK_ID, special_tokens.MASK),
)
_SPACE = "\u2581"
_TOKEN_KEYS = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
# amos_jax's and WordPiece's names of the specials: the same strings in both kinds
# (wordpiece_tokenizer checks its vocabulary has them); their ids are each tokenizer's own.
_BRACKET_TOKENS = dict(zip(_TOKEN_KEYS, (special_tokens.PAD, special_tokens.UNK,
                                         special_tokens.CLS, special_tokens.SEP,
                                         special_tokens.MASK)))
# The authors' names, as their dict.txt spells them (data/authors_pieces.py).
_AUTHORS_TOKENS = dict(zip(_TOKEN_KEYS, ("<pad>", "<unk>", "<s>", "</s>", authors_pieces.MASK)))
# The AMOS authors' tokenizer: the transformers class and the module of rules it imports,
# amos_jax's own (data/authors_pieces.py), shipped unchanged.
TOKENIZATION_MODULE = "tokenization_amos_jax"
AUTHORS_TOKENIZER_CLASS = "AmosJaxAuthorsTokenizer"
AUTHORS_CODE = {TOKENIZATION_MODULE + ".py": os.path.join(os.path.dirname(__file__),
                                                          TOKENIZATION_MODULE + ".py"),
                "authors_pieces.py": authors_pieces.__file__}


def _special_closing_pattern() -> str:
  """Regex of the "]" that closes a special token written as text (`[CLS]`)."""
  openings = "|".join(r"\[" + piece[1:-1] for _, piece in _SPECIALS)
  return rf"(?<={openings})\]"


def _read_model(path: str):
  """The SentencePiece model's protobuf, checked for what build_tokenizer reproduces."""
  # transformers' copy of SentencePiece's model proto: sentencepiece's own is generated for
  # protobuf 7 and refuses the protobuf 6 that Apache Beam (requirements-beam.txt) holds to.
  from transformers.utils import sentencepiece_model_pb2_new as sentencepiece_model_pb2
  proto = sentencepiece_model_pb2.ModelProto()
  with open(path, "rb") as f:
    proto.ParseFromString(f.read())
  model_type = proto.trainer_spec.model_type
  if model_type != sentencepiece_model_pb2.TrainerSpec.UNIGRAM:
    name = sentencepiece_model_pb2.TrainerSpec.ModelType.Name(model_type)
    raise errors.InputError(
        f"{path}: the Hugging Face export converts unigram SentencePiece models "
        f"(data.tokenizer_model_type=unigram, the default); this one is {name}.")
  spec = proto.normalizer_spec
  if not (spec.add_dummy_prefix and spec.remove_extra_whitespaces and spec.escape_whitespaces):
    raise errors.InputError(f"{path}: expected SentencePiece's default whitespace handling "
                            "(add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces).")
  if proto.trainer_spec.byte_fallback or proto.trainer_spec.treat_whitespace_as_suffix:
    raise errors.InputError(
        f"{path}: byte_fallback and treat_whitespace_as_suffix are not supported.")
  return proto


def build_tokenizer(sentencepiece_path: str):
  """A `tokenizers.Tokenizer` giving the ids amos_jax's tokenizer gives."""
  from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
  from tokenizers import pre_tokenizers, processors
  proto = _read_model(sentencepiece_path)
  vocab = [(piece.piece, piece.score) for piece in proto.pieces]
  for token_id, piece in _SPECIALS:
    if vocab[token_id][0] != piece:
      raise errors.InputError(f"{sentencepiece_path}: piece {token_id} is {vocab[token_id][0]!r}, "
                              f"expected {piece!r}.")
  tokenizer = Tokenizer(models.Unigram(vocab, unk_id=special_tokens.UNK_ID,
                                       byte_fallback=False))
  steps = []
  if proto.normalizer_spec.precompiled_charsmap:
    steps.append(normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap))
  steps += [normalizers.Strip(), normalizers.Replace(Regex(" {2,}"), " ")]
  tokenizer.normalizer = normalizers.Sequence(steps)
  tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
      pre_tokenizers.Metaspace(replacement=_SPACE, prepend_scheme="always", split=True),
      # The "]" starts the next piece of the word: unknown characters after it still fuse
      # into one [UNK] with it, as in SentencePiece.
      pre_tokenizers.Split(Regex(_special_closing_pattern()), behavior="merged_with_next"),
  ])
  tokenizer.decoder = decoders.Metaspace(replacement=_SPACE, prepend_scheme="always",
                                         split=True)
  tokenizer.add_special_tokens([AddedToken(piece, special=True, normalized=False)
                                for _, piece in _SPECIALS])
  cls, sep = special_tokens.CLS, special_tokens.SEP
  tokenizer.post_processor = processors.TemplateProcessing(
      single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
      special_tokens=[(cls, special_tokens.CLS_ID), (sep, special_tokens.SEP_ID)])
  return tokenizer


def write_tokenizer_files(sentencepiece_path: str, out_dir: str, max_length: int):
  """Writes tokenizer.json and tokenizer_config.json (AutoTokenizer reads both)."""
  build_tokenizer(sentencepiece_path).save(os.path.join(out_dir, TOKENIZER_JSON))
  # As SentencePiece: "[MASK]" in text is characters, not the special token.
  _write_config(out_dir, max_length, split_special_tokens=True)


def write_authors_files(tokenizer, out_dir: str, max_length: int):
  """The AMOS authors' tokenizer (data/authors_tokenizer.py): its sp.model and dict.txt,
  the code of AmosJaxAuthorsTokenizer, and a tokenizer_config.json whose auto_map has
  AutoTokenizer load it (trust_remote_code=True)."""
  tokenizer.save(out_dir)  # sp.model, dict.txt
  for name, source in AUTHORS_CODE.items():
    shutil.copyfile(source, os.path.join(out_dir, name))
  # As amos_jax: "<mask>" in text is characters, not the special token.
  _write_config(out_dir, max_length, split_special_tokens=True,
                tokens=_AUTHORS_TOKENS,
                tokenizer_class=AUTHORS_TOKENIZER_CLASS,
                auto_map={"AutoTokenizer": [
                    f"{TOKENIZATION_MODULE}.{AUTHORS_TOKENIZER_CLASS}", None]})


def write_wordpiece_files(tokenizer, out_dir: str, max_length: int):
  """tokenizer.json and tokenizer_config.json of a converted BERT/ELECTRA checkpoint's
  WordPiece tokenizer (data/wordpiece_tokenizer.py): its own pipeline, saved as it is, so
  AutoTokenizer gives the ids the original tokenizer gives."""
  tokenizer.save(out_dir)  # tokenizer.json
  # As BERT's tokenizer: "[MASK]" in text is the special token.
  _write_config(out_dir, max_length, split_special_tokens=False)


def _write_config(out_dir: str, max_length: int, split_special_tokens: bool,
                  tokens: dict = _BRACKET_TOKENS,
                  tokenizer_class: str = "PreTrainedTokenizerFast", **extra):
  config = {
      "tokenizer_class": tokenizer_class,
      **tokens, **extra,
      "model_max_length": max_length,
      "padding_side": "right",  # amos_jax's encoder is trained on right-padded rows.
      "split_special_tokens": split_special_tokens,
      # Segments come from the [SEP] tokens inside the model, as in amos_jax.
      "model_input_names": ["input_ids", "attention_mask"],
      "clean_up_tokenization_spaces": False,
  }
  with open(os.path.join(out_dir, TOKENIZER_CONFIG), "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
