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


def gated_checkpoint(err: BaseException) -> str | None:
    """The one line for a hub checkpoint the user may not download yet (a gated repository,
    such as Meta's Llama weights), from the hub's error anywhere in `err`'s chain; None for any
    other error. Matched by class name: this module imports nothing."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if type(err).__name__ == "GatedRepoError":
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            where = next((line for line in lines if line.startswith("Visit ")),
                         "Visit the checkpoint's page on the Hugging Face hub to ask for access.")
            return (f"a gated checkpoint: {where} Once granted, log in on this machine "
                    "(`hf auth login`, or set HF_TOKEN) and run again.")
        err = err.__cause__ or err.__context__
    return None
