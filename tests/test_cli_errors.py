"""Bad input at any command line: one `error: ...` line, exit status 2, no traceback."""

import logging
import os
import subprocess
import sys

from absl import flags
from ml_collections import config_flags
import orbax.checkpoint
import pytest

from amos_jax import cli_errors
from amos_jax import config_validation
from amos_jax import errors
from amos_jax.data import prepare as prepare_lib
from amos_jax.data import sources
from configs import tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_one_error_line(result, *fragments):
  """Exit status 2, a last stderr line `error: ...` holding `fragments`, no traceback."""
  assert result.returncode == cli_errors.EXIT_STATUS, result.stderr[-3000:]
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
  assert len(error_lines) == 1, result.stderr[-3000:]
  assert result.stderr.splitlines()[-1] == error_lines[0]
  for fragment in fragments:
    assert fragment in error_lines[0], error_lines[0]


def test_every_entry_point_fails_with_one_line(tmp_path):
  # Pretraining's own case, an unknown config key, is test_loop's; plots' is test_plots'.
  empty_corpus = tmp_path / "empty.txt"
  empty_corpus.write_text("")
  not_a_workdir = tmp_path / "not_a_workdir"
  not_a_workdir.mkdir()
  commands = {
      "empty corpus": ([sys.executable, "-m", "amos_jax.main", "--config=configs/tiny.py",
                        f"--workdir={tmp_path}/b", "--mode=prepare",
                        f"--config.data.text_files={empty_corpus}"],
                       [f"{empty_corpus} holds no text"]),
      "fine-tuning input": ([sys.executable, "-m", "amos_jax.main",
                             "--config=configs/glue.py:sst2", f"--workdir={tmp_path}/c",
                             f"--config.init_checkpoint={tmp_path}/missing",
                             f"--config.data_dir={tmp_path}"],
                            [f"{tmp_path}/missing", "is not a directory: expected a checkpoint "
                             "directory"]),
      "export input": ([sys.executable, "-m", "amos_jax.export",
                        f"--workdir={not_a_workdir}", f"--out={tmp_path}/export"],
                       [f"{not_a_workdir}' is not a checkpoint layout amos_jax reads",
                        "Found: an empty directory"]),
  }
  # Started together: most of each one's time is spent importing.
  processes = {name: subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
               for name, (command, _) in commands.items()}
  for name, process in processes.items():
    stdout, stderr = process.communicate(timeout=240)
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert_one_error_line(result, *commands[name][1])


def config_flag_values():
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", None, "Config file.", flag_values=flag_values)
  return flag_values


def test_an_unknown_override_names_the_key_the_file_and_the_closest_keys():
  argv = ["main", "--config=configs/tiny.py:electra", "--config.optimizer.learnin_rate=1",
          "--config.batch_size=8"]
  message = cli_errors.unknown_override_message(argv, config_flag_values())
  assert message.startswith("--config.optimizer.learnin_rate: configs/tiny.py has no key "
                            "'optimizer.learnin_rate'; the closest existing keys are "
                            "optimizer.learning_rate, ")
  assert cli_errors.unknown_override_message(argv[:2] + argv[3:], config_flag_values()) is None


# The entry point's body as cli_errors.run calls it, once absl has parsed the flags.
run_main = cli_errors._run_main  # pylint: disable=protected-access


def raise_error(error):
  def main(argv):
    del argv
    raise error
  return main


def test_expected_errors_are_one_line_bugs_and_debug_keep_the_traceback(monkeypatch, capsys):
  monkeypatch.setattr(cli_errors, "quiet_libraries", lambda: None)
  with pytest.raises(SystemExit) as exit_info:
    run_main(raise_error(config_validation.ConfigError("config.seq_len=9: expected\n2.")),
             ["prog"])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == "error: config.seq_len=9: expected 2.\n"
  with pytest.raises(TypeError):  # A bug: absl prints its traceback.
    run_main(raise_error(TypeError("bug")), ["prog"])
  monkeypatch.setattr(sys, "argv", ["prog", "--debug"])
  with pytest.raises(config_validation.ConfigError):
    run_main(raise_error(config_validation.ConfigError("x")), ["prog"])


def test_libraries_log_warnings_and_amos_jax_logs_info():
  keep = cli_errors._OwnInfoLibraryWarnings().filter  # pylint: disable=protected-access
  record = lambda path, level: logging.LogRecord("absl", level, path, 1, "message", (), None)
  orbax_file = orbax.checkpoint.__file__
  assert keep(record(os.path.join(REPO, "amos_jax", "train", "loop.py"), logging.INFO))
  assert not keep(record(orbax_file, logging.INFO))
  assert keep(record(orbax_file, logging.WARNING))


def tiny_data(text_files: str):
  config = tiny.get_config()
  config.data.text_files = text_files
  return config


@pytest.mark.parametrize("content, message", [
    (b"", "empty.txt holds no text (1 empty files"),
    (bytes(range(128, 256)) * 40 + b"\n" + bytes(range(200, 256)) * 9, "2 lines skipped as not "
     "UTF-8"),
    (b"Hello world.\n", "Cannot train a SentencePiece vocabulary of 4096 pieces"),
])
def test_a_corpus_without_enough_text_is_an_input_error(tmp_path, content, message):
  path = tmp_path / "empty.txt"
  path.write_bytes(content)
  config = tiny_data(str(path))
  with pytest.raises(errors.InputError) as error_info:
    prepare_lib.prepare(config.data, seq_len=64, vocab_size=4096, workdir=str(tmp_path))
  assert message in str(error_info.value)
  assert isinstance(error_info.value, cli_errors.EXPECTED)


def test_a_glob_matching_nothing_is_expected(tmp_path):
  with pytest.raises(cli_errors.EXPECTED, match="data.text_files: '.*nothing-\\*' matches no"):
    sources.resolve_text_files(str(tmp_path / "nothing-*"))
