"""The typer app's plumbing, apart from the commands (cli.py): help in the usual notation, the
consoles of one invocation (made on first print where a command prints plainly), bad input and
internal errors as one line and an exit code, and how the process starts and ends."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .errors import XorlabError, note_folder, noted_folder, safe_text
from .proc import interrupt_exit_code

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


class _Lazy:
    """A console made on first use (rich's import is paid only by commands that print)."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr
        self.console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self.console is None:
            self.console = _console(stderr=self.stderr)
        return getattr(self.console, name)


def _console(*, stderr: bool = False) -> Any:
    """A terminal's width for a terminal; for a pipe or a file, no line wrapped or cut."""
    from .console import make_console

    return make_console(stderr=stderr)


out: Any = _Lazy()
err: Any = _Lazy(stderr=True)


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    """A flag's help shows nothing after its name (typer would print ``<bool>``, which reads as
    if the flag took a value); --help and --version included. An argument's name (CONFIG,
    PATH...) says what it is, so no type (``<path>``, ``<list[Path]>``) follows it."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if param.param_type_name == "argument":
            param.display_type_rich = _no_type
    return params


def _no_type(ctx: Any = None) -> None:
    return None


class Command(TyperCommand):
    """Help in the usual notation: ``Usage: xorlab train [OPTIONS] CONFIG [K=V]``, flags with no
    value shown, every option with its metavar (``K=V``, ``DIR``, ``FILE``, ``N``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


class Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in self.commands.values():  # a command declared without cls=Command
            if type(command) is TyperCommand:
                command.__class__ = Command  # same state, only the help differs

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))

    def invoke(self, ctx: Any) -> Any:
        """Run the command; an unexpected exception becomes one line and exit 1 (see crashed)."""
        global _debug
        _debug = False
        note_folder(None)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # usage errors and exits (typer.Exit is a RuntimeError), not crashes
        except XorlabError as exc:  # bad input that a command did not catch
            fail(exc)
        except OSError as exc:  # the disk, not xorlab: a folder where a file was, no space...
            if exc.filename is None or exc.strerror is None:
                crashed(exc)
            where = exc.filename2 or exc.filename  # a rename's target, not xorlab's temp file
            fail(XorlabError(exc.strerror, file=os.fsdecode(where)))
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) where no command handles it
            err.print("interrupted", style="yellow")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if _debug:
                raise
            crashed(exc)


EXIT_INTERNAL = 1  # an internal error: not the user's fault, so not 2
_debug = False  # --debug: an internal error's traceback on screen too


def crashed(exc: BaseException) -> NoReturn:
    """An internal error: the traceback goes to a file (in the run or sweep folder the command
    made, else a temporary file) and the screen gets one line saying where, then exit 1."""
    import traceback

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    head = (f"xorlab {__version__}, Python {sys.version.split()[0]}, {sys.platform}\n"
            f"command: {' '.join(sys.argv)}\n\n")  # fmt: skip
    where = _write_crash(head + text)
    what = safe_text(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if len(what) > 300:
        what = what[:297] + "..."
    place = f"the traceback is in {safe_text(str(where))}" if where else "no traceback file"
    err.print(f"error: internal error ({what}); {place} — please report it", markup=False,
              soft_wrap=True)  # fmt: skip
    raise typer.Exit(EXIT_INTERNAL)


def _write_crash(text: str) -> Path | None:
    """Write ``text`` as crash.txt in the noted folder, else as a new xorlab-crash-*.txt in the
    temporary folder; None if neither can be written."""
    folder = noted_folder()
    if folder is not None:
        from .rundir import atomic_write_text

        try:
            return atomic_write_text(folder / "crash.txt", text)
        except OSError:
            pass
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix="xorlab-crash-", suffix=".txt")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return Path(name)
    except OSError:
        return None


app = typer.Typer(
    name="xorlab",
    help="Train, sweep and understand small NumPy neural networks written from scratch.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain, conventional help, without loading rich's markdown (~35 ms)
    cls=Group,
)


def fail(exc: XorlabError) -> NoReturn:
    """Print a bad-input error, one line per problem, and exit 2."""
    for line in exc.lines():
        err.print(f"error: {line}", markup=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


PLAIN = {"validate", "schema"}  # commands that print one plain line or JSON, never through rich


def say(text: str) -> None:
    """One line on stdout as the consoles print a plain line (text from files escaped, never
    wrapped), without loading rich: ``validate`` answers in its start-up's time."""
    if not text.isprintable():
        text = "\n".join(safe_text(line) for line in text.split("\n"))
    sys.stdout.write(text + "\n")


def begin(command: str | None, debug: bool) -> None:
    """One invocation's set-up (the app's callback): --debug, and where its output goes."""
    global out, err, _debug
    _debug = debug
    if command in PLAIN:  # rich loads on the first print, if any
        out, err = _Lazy(), _Lazy(stderr=True)
    else:
        out, err = _console(), _console(stderr=True)


def _exit(code: object) -> NoReturn:
    """Exit as SystemExit(code) would, minus the interpreter's teardown of every module's objects
    (numpy, pandas, pydantic: ~80 ms of a sweep's end, for nothing): the atexit handlers run
    (multiprocessing's clean-up among them) and the output is flushed, then os._exit."""
    import atexit

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = interrupt_exit_code() if code == EXIT_INTERRUPTED else code
    else:  # SystemExit("message"): printed, status 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(status)


LIGHT = {"validate", "schema", "watch", "--help", "--version", "--show-completion",
         "--install-completion"}  # fmt: skip


def _light(args: list[str]) -> bool:
    """Whether this command line computes nothing numeric (help, validate, schema, completion):
    then start-up skips importing numpy (~50 ms) to quiet its warnings."""
    return not args or bool(LIGHT & set(args)) or any(a.startswith("_") for a in args[:1])


def _may_use_local_workers(args: list[str]) -> bool:
    """Whether this command line looks like a sweep in local worker processes. Read before typer
    parses it, so a wrong guess only costs an idle fork server (or a later start)."""
    if not args or args[0] != "sweep":
        return False
    single = {"--dry-run", "--help", "--jobs=1", "-j1", "--executor=dask"}
    pairs = set(zip(args, args[1:]))
    return not (single & set(args) or {("--jobs", "1"), ("-j", "1"), ("--executor", "dask")} & pairs
                or (os.cpu_count() or 1) < 2)  # fmt: skip
