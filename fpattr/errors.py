"""Error tree and exit codes shared by the library and the CLI.

Every error a user can cause derives from :class:`FpattrError`, so the CLI can
turn it into one clear line (no traceback) and the right exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (the CLI contract in docs/user-guide.md)."""

    OK = 0  #: every input was processed
    SOME_FAILED = 1  #: the run finished but some inputs failed
    USAGE = 2  #: usage error, or nothing could be processed
    INTERNAL = 70  #: a bug in fpattr or a plugin (EX_SOFTWARE); the message asks for a report
    OUTPUT_LOST = 74  #: the results could not be written (disk full, I/O error: EX_IOERR)
    INTERRUPTED = 130  #: stopped by SIGINT (Ctrl-C) after finishing the current record
    TERMINATED = 143  #: stopped by SIGTERM, handled like SIGINT
    HANGUP = 129  #: stopped by SIGHUP (terminal closed), handled like SIGINT
    PIPE_CLOSED = 141  #: the reader of stdout left (``| head``): 128 + SIGPIPE, quietly


class FpattrError(Exception):
    """Base class: a problem the user can understand and fix."""

    exit_code: ExitCode = ExitCode.USAGE


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived: unwind like Ctrl-C (outputs closed, temp files
    removed).

    A :class:`KeyboardInterrupt`, so every cleanup path written for Ctrl-C also runs for
    the others. The exit code is the shell's 128 + ``signum``: 130 for SIGINT, 143 for
    SIGTERM, 129 for SIGHUP.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


def interruption_in(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or :class:`Interrupted` signal) behind ``exc``, if any: the first
    :class:`KeyboardInterrupt` along its ``__cause__`` / ``__context__`` chain.

    Some libraries catch everything, the interruption included, and raise their own error
    from it (``torch.onnx.export`` reports a Ctrl-C as a failed export); the CLI reads the
    chain so that such a run still ends as interrupted (130, 143, 129), not as a failure.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


class UsageError(FpattrError):
    """Bad arguments or options."""


class NoReferenceError(UsageError):
    """An enrolment none of whose reference images is usable (the gallery is unchanged);
    ``left_out``: each input left out, ``{"path", "error", ...}``."""

    def __init__(self, message: str, left_out: list[dict]) -> None:
        super().__init__(message)
        self.left_out = left_out


class PluginError(FpattrError):
    """A plugin failed to load or misbehaved."""


class RegistryError(FpattrError, LookupError):
    """Unknown or duplicate name in a registry."""


class ImageLoadError(FpattrError):
    """One input could not be decoded safely; the batch goes on."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class BackboneError(FpattrError):
    """A backbone could not be created or run (missing model file, runtime)."""


class GalleryError(FpattrError):
    """Gallery missing, corrupt, or made by another backbone."""


class ModelFileError(FpattrError):
    """A model file or model card is missing or does not match its checksum."""
