"""User-facing errors.

Anything raised as a :class:`TaafError` is a problem with the user's input (a file, a flag, a
data root, a size over the memory budget), not a bug. The command-line entry points run inside
one error boundary (:mod:`taaf.boundary`) that prints any failure as one line on stderr with
exit code 2: a TaafError as ``<prog>: error: <message>``, an OSError or MemoryError likewise,
any other exception (a bug) as ``<prog>: internal error: <Type>: <message> (rerun with --debug
for the traceback)``. Exit code 1 is never used; ``--debug`` re-raises with the traceback.
"""


class TaafError(Exception):
    """A problem with user input that deserves one clear line, not a traceback."""


class DataError(TaafError):
    """A data set is missing, incomplete or malformed."""


class CheckpointError(TaafError):
    """A checkpoint file is missing, corrupt, truncated or not one of ours."""


class ConfigError(TaafError):
    """A configuration value is out of range or unknown."""
