"""How the command lines end on bad input, and what they print on the way.

Every entry point (amos_jax.main, .export, .plots, .data.prepare) calls `run(main)` instead
of absl's `app.run(main)`. Then:
  - an error of an EXPECTED type (a bad flag, config key or value, file, checkpoint) prints
    its message as one `error: ...` line and exits with status 2; anything else is a bug
    and keeps its traceback;
  - libraries (orbax, jax, matplotlib, TensorFlow's C++ runtime) log WARNING and above
    only, while amos_jax's own INFO lines (progress, evaluation, summary) still show.
`--debug` (or absl's --verbosity=1) brings back tracebacks and the libraries' INFO logs.
"""

import difflib
import functools
import logging
import os
import re
import sys

from absl import app
from absl import flags
from absl import logging as absl_logging
# The submodule: is_config_flag and ConfigFileFlagParser are public there, not in the package.
from ml_collections.config_flags import config_flags

from amos_jax import config_validation
from amos_jax import errors

EXPECTED = (errors.InputError, FileNotFoundError, FileExistsError, NotADirectoryError,
            IsADirectoryError, PermissionError, app.UsageError)
EXIT_STATUS = 2

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def run(main):
  """absl's app.run(main) with the behaviour of the module docstring."""
  if "debug" not in flags.FLAGS:
    flags.DEFINE_bool("debug", False,
                      "Print tracebacks for every error and the libraries' INFO logs.")
  app.run(functools.partial(_run_main, main), flags_parser=_parse_flags)


def fail(message: str):
  """Ends the program with `error: <message>` on one line and status 2."""
  print("error: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
  sys.exit(EXIT_STATUS)


def debugging() -> bool:
  """Whether --debug (or --verbosity=1 or more) asks for tracebacks and library logs."""
  if flags.FLAGS.is_parsed() and "debug" in flags.FLAGS:
    return flags.FLAGS.debug or flags.FLAGS.verbosity >= 1
  return "--debug" in sys.argv  # Flags not parsed yet, or called outside run().


def _run_main(main, argv):
  if not debugging():
    quiet_libraries()
  try:
    return main(argv)
  except EXPECTED as error:
    if debugging():
      raise
    fail(error)


def _parse_flags(argv):
  """Parses the flags; a bad flag, config file or config key is one error line."""
  try:
    remaining = flags.FLAGS(argv)
  except flags.Error as error:
    if "--debug" in argv:
      raise
    fail(f"{error} (--helpshort lists the flags)")
  except (AttributeError, KeyError, OSError):
    message = unknown_override_message(argv, flags.FLAGS)
    if message is None or "--debug" in argv:
      raise
    fail(message)
  for name in _config_flag_names(flags.FLAGS):
    try:
      flags.FLAGS[name].value.keys()  # A config file that failed to load raises here.
    except OSError as error:
      fail(f"--{name}: {error}")
  return remaining


def _config_flag_names(flag_values) -> list[str]:
  return [name for name in flag_values if config_flags.is_config_flag(flag_values[name])]


def unknown_override_message(argv: list[str], flag_values) -> str | None:
  """For `--config.no_such_key=1`: names the key, the config file and the closest keys.

  None when every override in `argv` names a key of its config (the error was another).
  """
  for name in _config_flag_names(flag_values):
    spec = _flag_argument(argv, name)
    if spec is None:
      continue
    try:
      config = config_flags.ConfigFileFlagParser(name, lock_config=False).parse(spec)
      keys = config_validation.flat_keys(config)
    except Exception as error:  # pylint: disable=broad-except
      return f"--{name}={spec}: the config file cannot be loaded ({error})."
    for arg in argv:
      match = re.match(rf"^--?(?:no)?{re.escape(name)}\.([^=]+)", arg)
      if match and match.group(1) not in keys:
        key = match.group(1)
        closest = difflib.get_close_matches(key, sorted(keys), n=3, cutoff=0.0)
        return (f"--{name}.{key}: {spec.split(':', 1)[0]} has no key {key!r}; the closest "
                f"existing keys are {', '.join(closest)}.")
  return None


def _flag_argument(argv: list[str], name: str) -> str | None:
  """The value given to --name in argv (the last one), or None."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith((f"--{name}=", f"-{name}=")):
      value = arg.split("=", 1)[1]
    elif arg in (f"--{name}", f"-{name}") and i + 1 < len(argv):
      value = argv[i + 1]
  return value


class _OwnInfoLibraryWarnings(logging.Filter):
  """Passes amos_jax's records at any level and other code's from WARNING up."""

  def filter(self, record: logging.LogRecord) -> bool:
    return (record.levelno >= logging.WARNING
            or os.path.abspath(record.pathname).startswith(_PACKAGE_DIR))


def quiet_libraries():
  """Libraries log WARNING and up; amos_jax keeps its INFO lines (see module docstring)."""
  # TensorFlow's C++ runtime reads these when it loads, which happens later (data, clu). TF
  # only reads data and writes summaries here, so its oneDNN kernels (whose notice the log
  # level does not hide) never touch a number that matters.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  handler = absl_logging.get_absl_handler()
  if not any(isinstance(f, _OwnInfoLibraryWarnings) for f in handler.filters):
    handler.addFilter(_OwnInfoLibraryWarnings())
