"""Pretraining that continues from a converted encoder (config.init_checkpoint): a BERT saved
by transformers, with BERT's special ids ([CLS] 101, [SEP] 102, [MASK] 103)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from amos_jax import inference
from amos_jax import objective
from amos_jax.data import prepare as prepare_lib
from amos_jax.models import amos
from amos_jax.train import build as build_lib
from amos_jax.train import loop
from amos_jax.train import warm_start
from tests import export_helpers
from tests import helpers

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  directory = tmp_path_factory.mktemp("corpus")
  path = directory / "corpus.txt"
  path.write_text("\n\n".join(export_helpers.sentences(1500)))
  return str(path)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory, corpus):
  """A random 2-layer BERT and its cased WordPiece tokenizer, specials at BERT's ids."""
  from tokenizers.implementations import BertWordPieceTokenizer
  directory = tmp_path_factory.mktemp("bert")
  trainer = BertWordPieceTokenizer(lowercase=False)
  trainer.train([corpus], vocab_size=200, special_tokens=list(SPECIALS))
  pieces = [p for p, _ in sorted(trainer.get_vocab().items(), key=lambda item: item[1])
            if p not in SPECIALS]
  vocab = ["[PAD]"] + pieces[:99] + list(SPECIALS[1:]) + pieces[99:]
  (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
  transformers.BertTokenizerFast(str(directory / "vocab.txt"),
                                 do_lower_case=False).save_pretrained(str(directory))
  torch.manual_seed(0)
  model = transformers.BertModel(transformers.BertConfig(
      vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
      intermediate_size=64, max_position_embeddings=64)).eval()
  model.save_pretrained(str(directory))
  return str(directory), model


def warm_config(corpus, bert_dir, prepared_dir):
  config = helpers.tiny_config()
  config.init_checkpoint = bert_dir
  config.data.text_files = corpus
  config.data.prepared_dir = prepared_dir
  config.batch_size, config.num_train_steps = 8, 3
  config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 3
  config.eval_batches = 1
  return config


def test_the_first_step_starts_from_the_converted_encoder(tmp_path, corpus, bert_dir):
  directory, bert = bert_dir
  config = warm_config(corpus, directory, str(tmp_path / "data"))
  init = warm_start.configure(config)
  assert (config.model.hidden_size, config.model.vocab_size) == (32, bert.config.vocab_size)
  assert config.model.layer_norm_eps == 1e-12 and config.model.type_vocab_size == 2
  prepared = prepare_lib.prepare(config.data, seq_len=config.seq_len,
                                 vocab_size=config.model.vocab_size, workdir=str(tmp_path),
                                 batch_size=config.batch_size, tokenizer=init.tokenizer)
  assert (prepared.special.cls, prepared.special.sep, prepared.special.mask) == (101, 102, 103)
  rows = prepared.shards("train")[0]
  assert (rows[:, 0] == 101).all() and (rows[:, -1] == 102).all()
  pretraining = build_lib.build(config, special=prepared.special)
  state = warm_start.apply(build_lib.initial_state(pretraining, config), init)
  # The discriminator starts as the converted encoder: its hidden states are BERT's.
  texts = ["It is a truth universally acknowledged.", "Mr. Bennet made no answer."]
  encoded = [prepared.special.single(init.tokenizer.encode(text)) for text in texts]
  ids = np.zeros((2, max(map(len, encoded))), np.int32)
  for row, tokens in enumerate(encoded):
    ids[row, :len(tokens)] = tokens
  mask = ids != 0
  ours = amos.TextEncoder(config.model).apply(
      {"params": amos.encoder_params(state.params)}, ids, mask)
  with torch.no_grad():
    theirs = bert(input_ids=torch.tensor(ids.astype(np.int64)),
                  attention_mask=torch.tensor(mask.astype(np.int64))).last_hidden_state.numpy()
  np.testing.assert_allclose(np.asarray(ours)[mask], theirs[mask], atol=1e-5)
  # Pretraining's discriminator sees the token types fine-tuning and inference derive: the
  # packed rows' [SEP]s make segments, in objective.forward as in TextEncoder.
  model, row_ids = pretraining.model, jnp.asarray(rows[:2])
  masked = objective.mask_tokens(row_ids, helpers.keys(0, 2), 0.15, prepared.special)
  outputs = objective.forward(state.params, model, config.objective, masked,
                              helpers.keys(1, 2), jax.random.key(0), deterministic=True)
  discriminate = lambda types: model.apply(
      {"params": state.params}, outputs.discriminator_input, masked.padding_mask, True, None,
      types, method=amos.AmosModel.discriminate)
  types = amos.token_types(config.model, row_ids)
  assert np.asarray(types).max() == 1
  np.testing.assert_allclose(outputs.rtd_logits, discriminate(types), atol=1e-6)
  assert np.abs(np.asarray(outputs.rtd_logits) - np.asarray(discriminate(None))).max() > 1e-3
  # The rest is initialised afresh, at the encoder's width.
  assert state.params["generator"]["block_0"]["ffn_in"]["kernel"].shape == (32, 64)


@pytest.mark.slow
def test_pretraining_continues_and_its_workdir_keeps_the_tokenizer(tmp_path, corpus, bert_dir):
  directory, _ = bert_dir
  config = warm_config(corpus, directory, str(tmp_path / "data"))
  workdir = str(tmp_path / "run")
  loop.train_and_evaluate(config, workdir)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert [r["step"] for r in records if "loss" in r] == [3]
  assert np.isfinite([r["loss"] for r in records if "loss" in r]).all()
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["model"]["sep_token_id"] == 102
  tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
  text = ("Do you not want to know who has taken it?", "You want to tell me.")
  assert inference.load(workdir).tokenize([text]) == [tokenizer(*text)["input_ids"]]
