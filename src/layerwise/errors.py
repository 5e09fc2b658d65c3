"""The problems a user can fix, each reported as one line without a traceback (`cli.run`).

They live in this dependency-free module so that every script can catch them without
importing what raises them (torch, for a training error).
"""


class ArtifactError(RuntimeError):
    """An artifact on disk is missing, damaged or does not match what the reader expects."""


class ConfigError(ValueError):
    """A configuration problem, described in one line."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


class OutputError(OSError):
    """An output cannot be written (the disk is full, the folder read-only or not writable):
    `filename` is the file that was being written, `strerror` the system's reason."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


USER_ERRORS = (ArtifactError, ConfigError, TrainingError, OutputError)
