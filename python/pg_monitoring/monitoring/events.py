"""Sentry-shaped events built from Python exceptions, as `monitoring.capture_event` takes them.

This is the one part of error tracking that only the client can do: read the traceback while
it still exists. Everything after that (fingerprinting, grouping, scrubbing, trimming frames,
cutting oversize data) is the SQL's, so this module builds the event and nothing more.

The shape is sentry-python 2.x's: `exception.values` root cause first, each with
`stacktrace.frames` oldest call first; frames carry module, function, filename, abs_path,
lineno, the source line with five lines either side, and `in_app`.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import CodeType, FrameType, TracebackType
from typing import Any, ClassVar

try:  # optional: `pip install pg-monitoring[otel]`
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - exercised where opentelemetry is absent
    _otel_trace = None  # type: ignore[assignment]

Event = dict[str, Any]

# Lines of source either side of the failing line, as sentry-sdk sends.
CONTEXT_LINES = 5
# With include_locals: at most this many variables per frame, each repr cut to this length.
MAX_LOCALS = 50
MAX_LOCAL_REPR = 200
# How far below a code object's first line its def may stand (below its decorators).
_DECORATOR_LINES = 20
# How many code objects' source lines are remembered as checked.
_FITTED_MAX = 4096

_EXTERNAL = re.compile(r"[\\/](?:site|dist)-packages[\\/]")


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths["stdlib"], paths["platstdlib"]}
    dirs |= {os.path.realpath(d) for d in dirs}
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs))


_STDLIB = _stdlib_dirs()


@dataclass(frozen=True)
class FrameOptions:
    """How frames are judged and what they carry.

    A frame is in-app unless it comes from site-packages or dist-packages, the standard
    library or the interpreter (`<frozen ...>`, `<string>`). `in_app_include` and
    `in_app_exclude` (module prefixes: "myapp" covers "myapp.views") decide first; with
    `project_root`, only files under it are in-app. `include_locals` adds each frame's local
    variables, repr'd and cut to MAX_LOCAL_REPR characters (off by default: they may hold
    secrets, and repr can be slow).
    """

    project_root: str | None = None
    in_app_include: tuple[str, ...] = ()
    in_app_exclude: tuple[str, ...] = ()
    include_locals: bool = False

    @classmethod
    def make(
        cls,
        project_root: str | os.PathLike[str] | None = None,
        in_app_include: Iterable[str] = (),
        in_app_exclude: Iterable[str] = (),
        include_locals: bool = False,
    ) -> FrameOptions:
        root = None
        if project_root is not None:
            root = os.path.abspath(os.fspath(project_root)).rstrip(os.sep) + os.sep
        return cls(root, tuple(in_app_include), tuple(in_app_exclude), include_locals)


def _in_modules(module: str | None, prefixes: tuple[str, ...]) -> bool:
    return module is not None and any(
        module == prefix or module.startswith(prefix + ".") for prefix in prefixes
    )


def in_app(abs_path: str | None, module: str | None, options: FrameOptions) -> bool:
    """Whether a frame is the application's own (see FrameOptions)."""
    if _in_modules(module, options.in_app_include):
        return True
    if _in_modules(module, options.in_app_exclude):
        return False
    if not abs_path or abs_path.startswith("<"):
        return False
    if _EXTERNAL.search(abs_path) or abs_path.startswith(_STDLIB):
        return False
    if options.project_root is not None:
        return abs_path.startswith(options.project_root)
    return True


def _filename_for_module(module: str | None, abs_path: str) -> str:
    """The path relative to the top package's parent, as sentry-sdk shows it."""
    try:
        if not module or abs_path.startswith("<"):
            return abs_path
        base = module.split(".", 1)[0]
        if base == module:
            return os.path.basename(abs_path)
        base_file = getattr(sys.modules.get(base), "__file__", None)
        if not base_file:
            return abs_path
        return abs_path.split(base_file.rsplit(os.sep, 2)[0], 1)[-1].lstrip(os.sep)
    except Exception:  # a broken module object must not cost the event
        return abs_path


def safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__} object>"


def safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__} object>"
    return text if len(text) <= MAX_LOCAL_REPR else text[: MAX_LOCAL_REPR - 3] + "..."


def _local_vars(frame: FrameType) -> dict[str, str]:
    variables = {}
    for name, value in list(frame.f_locals.items())[:MAX_LOCALS]:
        variables[name] = safe_repr(value)
    return variables


class SourceLines:
    """Source lines for the frames of one capture, each file checked against the disk once.

    Python's line cache keeps a file's text from its first reading. After the file changes (a
    reload, a deploy before the restart) it hands out old text, and a frame gets another
    function's line, which also changes its issue's fingerprint. Like `traceback`, each
    capture first asks linecache to drop a file whose size or time changed. Unlike it, the
    lines must fit the frame's code (its function defined where the code says it starts):
    code loaded before a deploy gets the lines read before the deploy, if the process read
    them then, and otherwise no lines rather than someone else's.
    """

    # The text linecache held before it found the file changed: the code loaded before a
    # deploy runs until the restart, and this is its text. Per process, one per changed file.
    _superseded: ClassVar[dict[str, list[str]]] = {}
    # Code -> the lines found to fit it: linecache keeps the same list until it reads the
    # file again, so a frame seen before costs a lookup. Bounded: cleared when full.
    _fitted: ClassVar[dict[CodeType, list[str]]] = {}

    def __init__(self) -> None:
        self._current: dict[str, list[str]] = {}

    def of(self, code: CodeType, module_globals: dict[str, Any]) -> list[str]:
        """The lines `code` was compiled from, as far as they can be told; [] if not."""
        filename = code.co_filename
        lines = self._current.get(filename)
        if lines is None:
            lines = self._current[filename] = self._checked(filename, module_globals)
        if self._fitted.get(code) is lines:
            return lines
        if _fits(lines, code):
            if len(self._fitted) >= _FITTED_MAX:
                self._fitted.clear()
            self._fitted[code] = lines
            return lines
        older = self._superseded.get(filename)
        if older is not None and _fits(older, code):
            return older
        return []

    def _checked(self, filename: str, module_globals: dict[str, Any]) -> list[str]:
        cached = linecache.cache.get(filename)
        linecache.checkcache(filename)
        lines = linecache.getlines(filename, module_globals)
        # (an entry of one item is a loader's, not read yet: nothing to keep)
        if cached is not None and len(cached) > 1 and linecache.cache.get(filename) is not cached:
            self._superseded[filename] = cached[2]
        return lines


def _fits(lines: list[str], code: CodeType) -> bool:
    """Whether `lines` define `code`'s function or class where the code says it starts (its
    first decorator, or the def). Code of a module, a lambda or a comprehension names
    nothing to check by; code that starts past the end fits nothing. (String tests, not a
    regex: this runs for every frame of every capture.)"""
    name = code.co_name
    first = code.co_firstlineno
    if first > len(lines):
        return False
    if name.startswith("<"):
        return True
    for line in lines[first - 1 : first - 1 + _DECORATOR_LINES]:
        words = line.split(None, 2)
        if words and words[0] == "async":
            words = words[1:2] + words[2].split(None, 1) if len(words) == 3 else words[1:]
        if len(words) >= 2 and words[0] in ("def", "class"):
            defined = words[1]
            return defined.startswith(name) and (
                len(defined) == len(name) or not _is_name_char(defined[len(name)])
            )
    return False


def _is_name_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def serialize_frame(
    frame: FrameType,
    lineno: int | None,
    options: FrameOptions,
    sources: SourceLines | None = None,
) -> Event:
    """One stack frame as Sentry's frame object (`sources`: the capture's, shared by its
    frames)."""
    code = frame.f_code
    module = frame.f_globals.get("__name__")
    module = module if isinstance(module, str) else None
    filename = code.co_filename
    abs_path = filename if filename.startswith("<") else os.path.abspath(filename)
    result: Event = {
        "filename": _filename_for_module(module, abs_path),
        "abs_path": abs_path,
        "function": code.co_name,
        "module": module,
        "lineno": lineno,
        "in_app": in_app(abs_path, module, options),
    }
    if lineno is not None and lineno > 0:
        lines = (sources or SourceLines()).of(code, frame.f_globals)
        if 0 < lineno <= len(lines):
            result["pre_context"] = [
                line.rstrip("\r\n")
                for line in lines[max(lineno - 1 - CONTEXT_LINES, 0) : lineno - 1]
            ]
            result["context_line"] = lines[lineno - 1].rstrip("\r\n")
            result["post_context"] = [
                line.rstrip("\r\n") for line in lines[lineno : lineno + CONTEXT_LINES]
            ]
    if options.include_locals:
        result["vars"] = _local_vars(frame)
    return result


def stack_frames(
    tb: TracebackType | None, options: FrameOptions, sources: SourceLines | None = None
) -> list[Event]:
    """The frames of a traceback, oldest call first (the order a traceback links them in)."""
    sources = sources or SourceLines()
    frames = []
    while tb is not None:
        frames.append(serialize_frame(tb.tb_frame, tb.tb_lineno, options, sources))
        tb = tb.tb_next
    return frames


def _exception_value(
    error: BaseException, options: FrameOptions, mechanism: Event, sources: SourceLines
) -> Event:
    kind = type(error)
    module = kind.__module__
    value = safe_str(error)
    notes = getattr(error, "__notes__", None)  # PEP 678, Python 3.11+
    if isinstance(notes, list) and notes:
        value = "\n".join([value, *(safe_str(note) for note in notes)])
    result: Event = {
        "type": getattr(kind, "__qualname__", kind.__name__),
        "value": value,
        "mechanism": mechanism,
    }
    if module != "builtins":
        result["module"] = module
    if error.__traceback__ is not None:
        result["stacktrace"] = {"frames": stack_frames(error.__traceback__, options, sources)}
    return result


def exception_chain(error: BaseException, options: FrameOptions) -> list[Event]:
    """`exception.values`: the chain of `error`, root cause first, `error` itself last.

    Follows `__cause__` (raise ... from ...), else `__context__` (raised while handling)
    unless `__suppress_context__` (raise ... from None) hides it, as Python prints them.
    A never-raised exception has no traceback and so no stacktrace: the SQL groups it by
    type and value.
    """
    values = []
    sources = SourceLines()
    seen: set[int] = set()
    current: BaseException | None = error
    mechanism: Event = {"type": "generic", "handled": True}
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        values.append(_exception_value(current, options, mechanism, sources))
        if current.__cause__ is not None:
            current, source = current.__cause__, "__cause__"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, source = current.__context__, "__context__"
        else:
            break
        mechanism = {"type": "chained", "handled": True, "source": source}
    values.reverse()
    return values


def trace_context() -> Event | None:
    """`contexts.trace` of the active OpenTelemetry span, when opentelemetry is installed."""
    if _otel_trace is None:
        return None
    context = _otel_trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return {
        "type": "trace",
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def new_event(level: str, defaults: Mapping[str, Any], **fields: Any) -> Event:
    """An event with a fresh id and timestamp, `defaults` (tracker-wide fields), the active
    trace, and `fields`; fields that are None are left out, so the SQL's defaults apply."""
    event: Event = {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "level": level,
        "platform": "python",
    }
    event.update(defaults)
    trace = trace_context()
    if trace is not None:
        event["contexts"] = {"trace": trace}
    for key, value in fields.items():
        if value is not None:
            event[key] = value
    return event
