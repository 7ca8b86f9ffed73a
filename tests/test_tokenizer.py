"""Tokenizer: special ids, casing, [MASK] safety, decode, vocab checks, bad input."""

import gzip

import pytest

from amos_jax import special_tokens
from amos_jax.data import sources
from amos_jax.data import tokenizer as tokenizer_lib

VOCAB = 300


def _sample_lines(num_chapters):
  with gzip.open(sources.SAMPLE_PATH, "rt") as f:
    return "\n".join(f.read().split("\n\n")[:num_chapters]).split("\n")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tok") / "t.model")
  return tokenizer_lib.train_tokenizer(_sample_lines(100), path, vocab_size=VOCAB)


def test_special_tokens_at_fixed_ids(tokenizer):
  assert tokenizer.vocab_size == VOCAB
  for token_id, piece in ((special_tokens.PAD_ID, special_tokens.PAD),
                          (special_tokens.UNK_ID, special_tokens.UNK),
                          (special_tokens.CLS_ID, special_tokens.CLS),
                          (special_tokens.SEP_ID, special_tokens.SEP),
                          (special_tokens.MASK_ID, special_tokens.MASK)):
    assert tokenizer.processor.id_to_piece(token_id) == piece


def test_plain_text_never_encodes_to_specials(tokenizer):
  ids = tokenizer.encode("In the beginning [MASK] [CLS] [SEP] [PAD] God")
  assert set(ids).isdisjoint({special_tokens.PAD_ID, special_tokens.CLS_ID,
                              special_tokens.SEP_ID, special_tokens.MASK_ID})


def test_round_trip_skips_specials_and_keeps_case(tokenizer):
  text = "And God said, Let there be light: and there was light."
  ids = tokenizer.encode(text)
  assert tokenizer.decode(ids) == text
  wrapped = [special_tokens.CLS_ID, *ids, special_tokens.MASK_ID, special_tokens.SEP_ID,
             special_tokens.PAD_ID, special_tokens.PAD_ID]
  assert tokenizer.decode(wrapped) == text
  assert tokenizer.encode("And") != tokenizer.encode("and")


def test_encode_batch_matches_encode(tokenizer):
  texts = ["And the earth was without form", "and void;", ""]
  assert tokenizer.encode_batch(texts, num_threads=2) == [tokenizer.encode(t) for t in texts]


def test_load_checks_vocab_size(tokenizer):
  assert tokenizer_lib.load_tokenizer(tokenizer.model_path, vocab_size=VOCAB).vocab_size == VOCAB
  with pytest.raises(ValueError, match=f"{VOCAB} pieces.*vocab_size is 4096"):
    tokenizer_lib.load_tokenizer(tokenizer.model_path, vocab_size=4096)


def test_load_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="nope.model"):
    tokenizer_lib.load_tokenizer(str(tmp_path / "nope.model"))


def test_vocab_too_large_for_corpus_is_clear(tmp_path):
  with pytest.raises(ValueError, match="vocabulary of 5000 pieces"):
    tokenizer_lib.train_tokenizer(["a tiny corpus", "of two lines"], str(tmp_path / "t.model"),
                                  vocab_size=5000)
  assert not list(tmp_path.iterdir())  # No half-written model left behind.


def test_vocab_sha256_ignores_where_it_was_trained(tokenizer, tmp_path):
  again = tokenizer_lib.train_tokenizer(_sample_lines(100), str(tmp_path / "other.model"),
                                        vocab_size=VOCAB)
  assert again.vocab_sha256() == tokenizer.vocab_sha256()
  smaller = tokenizer_lib.train_tokenizer(_sample_lines(100), str(tmp_path / "small.model"),
                                          vocab_size=VOCAB - 1)
  assert smaller.vocab_sha256() != tokenizer.vocab_sha256()


def test_bpe(tmp_path):
  tok = tokenizer_lib.train_tokenizer(_sample_lines(30), str(tmp_path / "b.model"),
                                      vocab_size=200, model_type="bpe")
  assert tok.processor.id_to_piece(special_tokens.MASK_ID) == special_tokens.MASK
  assert tok.decode(tok.encode("Let there be light")) == "Let there be light"
