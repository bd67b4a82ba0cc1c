"""Errors a user can cause. The CLI renders each in one red block (with its hint) and exits 2."""

from __future__ import annotations

import os


class MmrecError(Exception):
    """Base of every user-facing error: `message` says what is wrong, `hint` what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class ConfigError(MmrecError):
    """Bad settings: unknown key, wrong type, impossible value, unreadable YAML."""


class DivergedError(ConfigError):
    """Training diverged (a loss that is not finite): the settings, not the data, are at fault."""


class BusyError(ConfigError):
    """Another live process holds the lock on what this command would write (mmrec.fileio.ProcessLock)."""


class DataError(MmrecError):
    """Bad input data: missing file or column, empty table, unusable values."""


class SplitError(DataError):
    """A split that cannot be made or would leak test data into training."""


class FeatureError(MmrecError):
    """Feature extraction or feature-store problems (missing cache, corrupt entry)."""


class WeightsNotFoundError(FeatureError):
    """Pretrained backbone weights could not be resolved offline."""


class CheckpointError(MmrecError):
    """A checkpoint that is missing, truncated, or does not match the data."""


class DeviceError(MmrecError):
    """A requested device (e.g. cuda) that is not available."""


class Interrupted(MmrecError):
    """Ctrl-C (SIGINT): the message says what was kept, the hint how to continue. Exit 130, as a shell reports it
    (143 for SIGTERM, handled alike: mmrec.cli.app.Terminated)."""

    exit_code = 130


class SystemResourceError(MmrecError):
    """The operating system refused a read or write: no space left, no permission, a file size limit..."""


def _shown_path(path: object) -> str:
    """A path as an error names it: mmrec's own temporary files (`.name.PID-hex.tmp`, a `.staging-` folder) are
    written beside their target, so the folder leads (the one to check), then the file."""
    text = str(path)
    folder, name = os.path.split(text)
    if name.startswith(".") and (name.endswith(".tmp") or ".staging-" in name):
        return f"{folder or '.'} (writing the temporary {name} there)"
    return text


def os_error(error: OSError) -> SystemResourceError:
    """An OSError as the user reads it: what failed, on which path, and what to check."""
    what = error.strerror or str(error) or type(error).__name__
    where = f": {_shown_path(error.filename)}" if error.filename else ""
    if error.filename2:
        where += f" -> {error.filename2}"
    return SystemResourceError(
        f"The system refused this command's file operation ({what}){where}.",
        hint="Check the free disk space, the permissions and any limits (ulimit) of that path, then run the "
             "command again: mmrec writes atomically, so the earlier outputs are intact.")
