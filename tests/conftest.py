"""Test-wide setup: 8 emulated CPU devices compiled for at XLA's backend optimisation level 0
(xla_test_flags.py), set before jax is imported; TF off any GPU; and one XLA compilation cache
for the run."""

import os
import shutil
import tempfile

from tests import xla_test_flags  # noqa: E402  (imports no JAX)

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 "
                      + xla_test_flags.FAST_COMPILE)
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Dozens of tests, and the CLI processes they start, compile the same tiny train and eval
# steps, and compiling dominates their time on CPU. One persistent cache for the whole run
# (xdist workers and subprocesses inherit the environment) halves it, e.g. for the resume
# test's three CLI runs. A cached executable is the compiled program itself, so results are
# unchanged. The process that made the cache removes it at the end, so every run compiles
# afresh as CI's does; a JAX_COMPILATION_CACHE_DIR set outside is used and left alone.
_CACHE_OWNER = "AMOS_JAX_TESTS_XLA_CACHE_OWNER"
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="amos_jax_tests_xla_cache_")
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
  os.environ[_CACHE_OWNER] = str(os.getpid())

import pytest


def pytest_sessionfinish(session):
  """The process that made the run's compilation cache (xdist's controller) removes it."""
  del session
  if os.environ.get(_CACHE_OWNER) == str(os.getpid()):
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


def pytest_collection_modifyitems(items):
  """The test files with slow tests first, each file's tests kept together (a stable sort).

  xdist hands tests out in this order, so the longest ones start early instead of leaving
  one worker busy at the end. A file's tests stay together because pytest tears a
  module-scoped fixture down whenever a worker's next test comes from another file: sorting
  the slow tests of all files to the front interleaved files, and one worker trained the
  shared test tokenizer 9 times in one run.
  """
  slow_files = {item.path for item in items if item.get_closest_marker("slow")}
  first_seen = {}
  for item in items:
    first_seen.setdefault(item.path, len(first_seen))
  items.sort(key=lambda item: (item.path not in slow_files, first_seen[item.path]))


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
