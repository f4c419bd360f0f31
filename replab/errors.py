"""User-facing errors: each names the problem and the fix, and the CLI
prints it without a traceback."""

from __future__ import annotations


class ReplabError(Exception):
    """An error caused by the user's input (config, data, checkpoint, argument).

    ``problem`` says what is wrong, ``fix`` what to do about it. The CLI prints both as one
    paragraph and exits with status 2.
    """

    exit_code = 2

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem.rstrip(".")
        self.fix = fix.rstrip(".")
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"{self.problem}. Fix: {self.fix}." if self.fix else f"{self.problem}."


class ConfigError(ReplabError):
    """A recipe or override that does not validate."""


class UntrustedCodeError(ConfigError):
    """A saved folder or file names code to import or run, and the user did not pass
    ``trust_code``: nothing of it was imported."""


class DataError(ReplabError):
    """A dataset that is missing, corrupt or fails its checksum."""


class CheckpointError(ReplabError):
    """A checkpoint that cannot be loaded into the model at hand."""


class DivergenceError(ReplabError):
    """Training produced a non-finite loss."""


class DiskFullError(ReplabError):
    """A write failed for lack of space; the file it was replacing is left as it was."""


class ReplabWarning(UserWarning):
    """Something the user must see although the job goes on (a tracking server that is down,
    images skipped): issued through Python's ``warnings`` (``replab.io.warn``), so a notebook
    shows it and ``warnings.filterwarnings`` can silence it; each run's summary.json keeps
    the ones issued while it ran (its ``warnings`` list)."""
