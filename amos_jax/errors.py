"""The error type for bad input a user can fix: a flag, a config key, a file, a checkpoint.

The command lines (amos_jax.cli_errors) print such an error as one `error: ...` line instead
of a traceback, so its message must say what was wrong and what was expected. It is a
ValueError, so callers that catch ValueError keep working.
"""


class InputError(ValueError):
  pass
