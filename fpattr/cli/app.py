"""Compose the Typer app: built-in command groups, then plugin commands."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from fpattr import __version__
from fpattr.errors import ExitCode, FpattrError, Interrupted, interruption_in


def _debug() -> bool:
    return os.environ.get("FPATTR_DEBUG", "") not in ("", "0")


def _plugin_exit(exc: BaseException) -> None:
    """Raise ``typer.Exit(70)`` after naming the plugin when ``exc`` was raised in a
    third-party plugin's code (an error or a ``sys.exit()`` in its backbone, writer or
    gallery: read as fpattr's internal error, or as exit 1 "some inputs failed", before);
    return when it was not."""
    from fpattr.plugins import ENV_LOAD, plugin_in_traceback

    plugin = plugin_in_traceback(exc.__traceback__)
    if plugin is None:
        return
    dist = " ".join(x for x in (plugin.distribution, plugin.version) if x)
    text = (
        f"SystemExit({exc.code!r})"
        if isinstance(exc, SystemExit)
        else f"{type(exc).__name__}: {exc}"
    )
    print(
        f"fpattr: error in plugin {plugin.name!r}"
        + (f" ({dist})" if dist else "")
        + f": {text} (rerun with FPATTR_DEBUG=1 for the traceback and report it to the "
        f"plugin's authors; without it: {ENV_LOAD} set to the other plugins)",
        file=sys.stderr,
    )
    raise typer.Exit(int(ExitCode.INTERNAL)) from None


class FpattrGroup(TyperGroup):
    """Maps library errors to a one-line message and the contract's exit codes: a
    :class:`FpattrError` its own (2 for usage), SIGINT 130, SIGTERM 143, SIGHUP 129 (all
    unwind, so outputs are closed and temp files removed), any other exception 70 (internal
    error). Results that could not be written (disk full, I/O error on stdout or an output
    file) exit 74 (EX_IOERR) with "cannot write results to ...: <reason>"; a closed pipe
    (``| head``) stops quietly. stdout is flushed here, inside the guarded region, so Python's
    own flush at exit can never hide a failed write."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # an empty argument names nothing; the path options and arguments would read it as
        # Path("") == ".", and `gallery add m "$REFS"` with REFS unset enrolled everything
        # under the working folder (break-it 28). No fpattr option takes an empty value,
        # given apart ("") or glued to its option ("--gallery=", review 28).
        for arg in args:
            if arg == "--":
                break  # what follows is positional: "" still caught below
            if arg.startswith("-") and arg.endswith("=") and "=" not in arg[:-1]:
                ctx.fail(
                    f"{arg!r} gives the option an empty value: a path or value left empty "
                    "(an unset shell variable?) names nothing; give it, or leave it out"
                )
        if "" in args:
            at = args.index("")
            after = f" after {args[at - 1]!r}" if at else ""
            ctx.fail(
                f"argument {at + 1}{after} is empty: a path or value left empty (an unset "
                "shell variable?) names nothing; give it, or leave the argument out"
            )
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        from fpattr.io.atomic import graceful_signals
        from fpattr.report.outputs import flush_stdout

        try:
            with graceful_signals():  # SIGTERM unwinds like Ctrl-C: no temp file left behind
                try:
                    rv = super().invoke(ctx)
                except SystemExit as exc:
                    flush_stdout()  # a failed flush turns the exit status into 74
                    _plugin_exit(exc)  # fpattr itself ends with typer.Exit, never this
                    raise
                except typer.Exit:
                    flush_stdout()  # a failed flush turns the exit status into 74
                    raise
                except Exception as exc:
                    # a library that wrapped the Ctrl-C in its own error (torch.onnx.export
                    # reported one as "ONNX export failed", exit 2): still an interruption
                    interrupt = interruption_in(exc)
                    if interrupt is not None and not _debug():
                        raise interrupt from None
                    raise
                flush_stdout()
                return rv
        except FpattrError as exc:
            if _debug():
                raise
            from fpattr.report.base import printable

            print(f"fpattr: error: {printable(str(exc))}", file=sys.stderr)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt as exc:
            code = exc.exit_code if isinstance(exc, Interrupted) else int(ExitCode.INTERRUPTED)
            name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
            print(f"fpattr: interrupted ({name})", file=sys.stderr)
            raise typer.Exit(code) from None
        except BrokenPipeError:  # `fpattr attribute ... | head`: the reader left, stop quietly
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            # 128 + SIGPIPE, as a Unix tool the signal stopped (1 read as "some inputs
            # failed", which none had: a break-it pass)
            raise typer.Exit(ExitCode.PIPE_CLOSED) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if _debug() or type(exc).__module__.startswith(("click", "typer")):
                raise
            if isinstance(exc, OSError) and exc.errno in _OUTPUT_LOST_ERRNOS:
                # a write that ran out of room (stdout redirected to a full disk, an export
                # file): results lost, 74, on every command (break-it: 70 "internal error"
                # from gallery list, doctor, evaluate -f json > /dev/full)
                from fpattr.report.base import printable
                from fpattr.report.outputs import _silence_stdout

                _silence_stdout()  # what is still buffered cannot fail again at exit
                what = f"write {printable(str(exc.filename))}" if exc.filename else "write results"
                print(f"fpattr: error: cannot {what}: {exc.strerror}", file=sys.stderr)
                raise typer.Exit(int(ExitCode.OUTPUT_LOST)) from None
            _plugin_exit(exc)
            print(
                f"fpattr: internal error: {type(exc).__name__}: {exc} "
                "(rerun with FPATTR_DEBUG=1 for the traceback and please report it)",
                file=sys.stderr,
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None


#: errno values of a write that found no room: the results are lost (exit 74), whatever
#: wrote them
_OUTPUT_LOST_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG") if hasattr(errno, name)
)


def _version(value: bool) -> None:
    if value:
        # parsed before FpattrGroup.invoke guards anything: its own write error (break-it:
        # `fpattr --version > /dev/full` printed a traceback and exited 1)
        try:
            print(f"fpattr {__version__}", flush=True)
        except OSError as exc:
            from fpattr.report.outputs import _silence_stdout

            _silence_stdout()
            if isinstance(exc, BrokenPipeError):
                raise typer.Exit(int(ExitCode.PIPE_CLOSED)) from None
            print(f"fpattr: error: cannot write to stdout: {exc.strerror}", file=sys.stderr)
            raise typer.Exit(int(ExitCode.OUTPUT_LOST)) from None
        raise typer.Exit()


def build_app(host: Any = None) -> typer.Typer:
    """The full CLI. ``host`` (a PluginHost) is created lazily when omitted."""
    import logging

    from fpattr.cli import (
        attribute_cmd,
        demo_cmd,
        doctor_cmd,
        gallery_cmd,
        plugins_cmd,
        provenance_cmd,
        verify_cmd,
    )

    logging.getLogger("PIL").setLevel(logging.CRITICAL)  # decode problems become per-file errors
    app = typer.Typer(
        name="fpattr",
        cls=FpattrGroup,
        help="Attribute images to the generative model that made them (zero-shot).\n\n"
        "Example: fpattr demo  |  fpattr attribute ./images --report report.html",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",  # docstrings are wrapped text: join their lines
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """fpattr: forensic attribution of generated images."""

    for mod in (
        attribute_cmd,
        verify_cmd,
        provenance_cmd,
        gallery_cmd,
        plugins_cmd,
        doctor_cmd,
        demo_cmd,
    ):
        mod.register(app)
    for optional in ("fpattr.cli.synth_cmd", "fpattr.cli.train_cmd", "fpattr.cli.eval_cmd"):
        _register_optional(app, optional)
    _register_optional(app, "fpattr.cli.artifacts_cmd")
    _register_optional(app, "fpattr.cli.analyze_cmd")

    from fpattr.plugins import get_host, set_host

    if host is not None:
        set_host(host)
    get_host().add_commands(app)
    return app


def _register_optional(app: typer.Typer, modname: str) -> None:
    import importlib

    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name == modname:
            return  # not written yet / not shipped
        raise
    mod.register(app)
