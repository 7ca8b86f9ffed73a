"""Export layout, atomic writes, and the load-time checks that reject broken exports."""

import json
import os
import shutil

import flax.serialization
import numpy as np
import pytest

from amos_jax import inference
from amos_jax.data import tokenizer as tokenizer_lib
from amos_jax.formats import encoder_tree
from amos_jax.formats import flax_export
from amos_jax.formats import registry
from amos_jax.models import amos
from tests import export_helpers


@pytest.fixture(scope="module")
def pristine_export(tmp_path_factory, tokenizer_path):
  return export_helpers.export_pretrained(str(tmp_path_factory.mktemp("pristine")),
                                          tokenizer_path)


@pytest.fixture
def export_dir(tmp_path, pristine_export):
  """A fresh copy of a valid export for each test to damage."""
  return shutil.copytree(pristine_export, str(tmp_path / "export"))


def read_record(export_dir):
  with open(os.path.join(export_dir, flax_export.CONFIG_FILE)) as f:
    return json.load(f)


def write_record(export_dir, record):
  with open(os.path.join(export_dir, flax_export.CONFIG_FILE), "w") as f:
    json.dump(record, f)


def test_export_holds_the_encoder_only(pristine_export):
  assert sorted(os.listdir(pristine_export)) == ["config.json", "params.msgpack",
                                                 "tokenizer.model"]
  # Nothing of the staging directory is left beside the export.
  assert os.listdir(os.path.dirname(pristine_export)) == ["export"]
  record = read_record(pristine_export)
  assert (record["format"], record["format_version"]) == (flax_export.FORMAT,
                                                             flax_export.FORMAT_VERSION)
  assert record["module"] == "TextEncoder" and record["task"] is None
  assert "generator" not in record["model"]
  assert set(encoder_tree.ENCODER_CONFIG_KEYS) <= set(record["model"])
  with open(os.path.join(pristine_export, flax_export.PARAMS_FILE), "rb") as f:
    params = flax.serialization.msgpack_restore(f.read())
  assert sorted(params) == ["discriminator", "token_embedding"]


def test_bf16_export_casts_params_and_records_it(tmp_path, tokenizer_path):
  out = export_helpers.export_pretrained(str(tmp_path), tokenizer_path, dtype="bfloat16")
  assert read_record(out)["model"]["param_dtype"] == "bfloat16"
  params = flax_export.read_params_file(os.path.join(out, flax_export.PARAMS_FILE))
  assert params["token_embedding"].dtype.name == "bfloat16"


def test_export_refuses_to_overwrite_unless_asked(tmp_path, tokenizer_path):
  out = export_helpers.export_pretrained(str(tmp_path), tokenizer_path)
  with pytest.raises(FileExistsError, match="overwrite"):
    export_helpers.export_pretrained(str(tmp_path), tokenizer_path)
  export_helpers.export_pretrained(str(tmp_path), tokenizer_path, overwrite=True,
                                   dtype="bfloat16")
  assert read_record(out)["model"]["param_dtype"] == "bfloat16"
  assert os.listdir(tmp_path) == ["export"]


def test_crash_during_export_leaves_nothing(tmp_path, tokenizer_path, monkeypatch):
  def crash(*args, **kwargs):
    raise OSError("disk full")
  monkeypatch.setattr(shutil, "copyfile", crash)
  with pytest.raises(OSError, match="disk full"):
    export_helpers.export_pretrained(str(tmp_path), tokenizer_path)
  assert os.listdir(tmp_path) == []


def test_export_rejects_a_tree_that_does_not_match_the_config(tmp_path, tokenizer_path):
  config = export_helpers.model_config()
  params = export_helpers.amos_params()
  config.ffn_size = 128
  with pytest.raises(ValueError, match=r"'discriminator/block_0/ffn_in/bias' has shape "
                                       r"\(256,\) but model_config needs \(128,\)"):
    registry.write_export(params, config,
                          tokenizer_lib.load_tokenizer(tokenizer_path), str(tmp_path / "export"))
  assert os.listdir(tmp_path) == []


def edit_model(key, value):
  def edit(export_dir):
    record = read_record(export_dir)
    record["model"][key] = value
    write_record(export_dir, record)
  return edit


def drop_model_key(key):
  def edit(export_dir):
    record = read_record(export_dir)
    del record["model"][key]
    write_record(export_dir, record)
  return edit


def edit_record(key, value):
  def edit(export_dir):
    record = read_record(export_dir)
    record[key] = value
    write_record(export_dir, record)
  return edit


def overwrite_file(name, content_fn):
  def edit(export_dir):
    path = os.path.join(export_dir, name)
    with open(path, "rb") as f:
      content = f.read()
    with open(path, "wb") as f:
      f.write(content_fn(content))
  return edit


def truncate_half(content):
  return content[:len(content) // 2]


def random_bytes(content):
  return np.random.default_rng(0).bytes(len(content))


@pytest.mark.parametrize("damage, error, message", [
    (overwrite_file("params.msgpack", truncate_half), ValueError,
     r"params\.msgpack has \d+ bytes but config\.json records \d+: truncated"),
    (overwrite_file("params.msgpack", random_bytes), ValueError,
     r"params\.msgpack does not match the sha256"),
    (overwrite_file("config.json", truncate_half), ValueError,
     r"config\.json is not valid JSON"),
    (overwrite_file("config.json", lambda _: b'{"format": "huggingface"}'), ValueError,
     r"is not a checkpoint layout amos_jax reads; expected one of: amos_jax export.*Found: "
     r"config\.json, params\.msgpack, tokenizer\.model"),
    (edit_record("format_version", 99), ValueError, r"format_version 99; this code reads"),
    (drop_model_key("num_heads"), ValueError, r"model lacks \['num_heads'\]"),
    (edit_model("num_layers", 3), ValueError,
     r"lacks parameter 'discriminator/block_2/.*' .* config\.json's model needs"),
    (edit_model("hidden_size", 32), ValueError,
     r"'discriminator/block_0/attention/key/kernel' has shape \(64, 2, 32\) but "
     r"config\.json's model needs \(32, 2, 16\)"),
    (edit_model("param_dtype", "bfloat16"), ValueError,
     r"is float32 but config\.json's model needs bfloat16 \(param_dtype\)"),
    (overwrite_file("tokenizer.model", truncate_half), ValueError,
     r"tokenizer\.model has \d+ bytes"),
    (lambda d: os.remove(os.path.join(d, "params.msgpack")), FileNotFoundError,
     r"params\.msgpack not found"),
])
def test_load_names_what_is_wrong(export_dir, damage, error, message):
  damage(export_dir)
  with pytest.raises(error, match=message):
    inference.load(export_dir)


def replace_tokenizer(export_dir, content: bytes):
  """Swaps tokenizer.model and re-records it, as a hand-assembled export would."""
  path = os.path.join(export_dir, flax_export.TOKENIZER_FILE)
  with open(path, "wb") as f:
    f.write(content)
  record = read_record(export_dir)
  record["tokenizer"] = flax_export.file_record(path)
  write_record(export_dir, record)


def test_load_rejects_a_tokenizer_of_another_vocab_size(export_dir, tmp_path):
  with open(export_helpers.train_tokenizer(str(tmp_path), vocab_size=100), "rb") as f:
    replace_tokenizer(export_dir, f.read())
  with pytest.raises(ValueError, match=r"has 100 pieces but config\.model\.vocab_size is 128"):
    inference.load(export_dir)


def test_load_rejects_a_foreign_tokenizer_file(export_dir):
  replace_tokenizer(export_dir, b'{"not": "a sentencepiece model"}')
  with pytest.raises(ValueError, match=r"tokenizer\.model' is not a SentencePiece model"):
    inference.load(export_dir)


@pytest.mark.parametrize("content_fn", [truncate_half, random_bytes,
                                        lambda _: b'{"token_embedding": [1, 2]}'])
def test_read_params_rejects_truncated_and_foreign_files(export_dir, content_fn):
  overwrite_file("params.msgpack", content_fn)(export_dir)
  with pytest.raises(ValueError, match=r"params\.msgpack is not a flax msgpack parameter file"):
    flax_export.read_params_file(os.path.join(export_dir, flax_export.PARAMS_FILE))


def test_an_export_from_before_the_authors_buckets_keeps_t5_buckets(export_dir):
  """Exports written before 2026-12-04 have no relative_position_bucket_function: they were
  trained with T5's buckets and must keep computing them."""
  drop_model_key("relative_position_bucket_function")(export_dir)
  loaded = inference.load(export_dir)
  params = amos.encoder_params(export_helpers.amos_params())
  token_ids = np.array([[2, 9, 10, 11, 12, 13, 14, 3]])
  got = loaded.module.apply({"params": loaded.params}, token_ids, token_ids > 0)
  outputs = {}
  for function in ("t5_bidirectional", "amos"):
    config = export_helpers.model_config()
    config.relative_position_bucket_function = function
    outputs[function] = amos.TextEncoder(config).apply({"params": params}, token_ids,
                                                       token_ids > 0)
  np.testing.assert_allclose(got, outputs["t5_bidirectional"], atol=1e-6)
  assert np.abs(np.asarray(outputs["amos"]) - np.asarray(got)).max() > 1e-3
