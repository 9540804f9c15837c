"""User-facing errors.

Anything raised as a :class:`TaafError` is a problem with the user's input (a file, a flag, a
data root), not a bug. Command-line entry points print its message as one line and exit with
code 2; every other exception is a bug and keeps its traceback.
"""


class TaafError(Exception):
    """A problem with user input that deserves one clear line, not a traceback."""


class DataError(TaafError):
    """A data set is missing, incomplete or malformed."""


class CheckpointError(TaafError):
    """A checkpoint file is missing, corrupt, truncated or not one of ours."""


class ConfigError(TaafError):
    """A configuration value is out of range or unknown."""
