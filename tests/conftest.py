"""Test-wide setup: 8 emulated CPU devices (before jax is imported) and TF off any GPU."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


# Fixtures several test files share; module scope: each test file builds its own once.
@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
  """A small SentencePiece model trained for the test module."""
  from tests import export_helpers
  return export_helpers.train_tokenizer(str(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="module")
def config():
  """The tiny encoder config that export tests build models from."""
  from tests import export_helpers
  return export_helpers.model_config()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tokenizer_path):
  """A tiny pretraining workdir (config, tokenizer, checkpoint) to fine-tune from."""
  from tests import export_helpers
  return export_helpers.make_pretraining_workdir(str(tmp_path_factory.mktemp("pre") / "run"),
                                                 tokenizer_path)
