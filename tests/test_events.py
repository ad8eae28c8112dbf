"""Events built from Python exceptions: frames, in-app, chains, locals, traces. No database."""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
import uuid
from pathlib import Path
from types import FrameType, ModuleType

import pytest
from opentelemetry.sdk.trace import TracerProvider

from pg_monitoring.monitoring.events import (
    MAX_LOCAL_REPR,
    FrameOptions,
    exception_chain,
    in_app,
    serialize_frame,
    trace_context,
)

HERE = os.path.abspath(__file__)
DEFAULT = FrameOptions()


def inner(order_id: int) -> None:
    secret_token = "abc"  # noqa: F841 - a local the locals test looks for
    raise ValueError(f"bad order {order_id}")


def outer(order_id: int) -> None:
    inner(order_id)


def caught(function: object, *args: object) -> BaseException:
    try:
        function(*args)  # type: ignore[operator]
    except BaseException as error:
        return error
    raise AssertionError("did not raise")


def line_of(text: str) -> int:
    """The line number of the first line of this file that contains `text`."""
    for number, line in enumerate(Path(HERE).read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(text)


def test_frames_oldest_call_first_with_source_context() -> None:
    (value,) = exception_chain(caught(outer, 7), DEFAULT)
    assert value["type"] == "ValueError"
    assert value["value"] == "bad order 7"
    assert "module" not in value, "builtins is no module worth sending"
    assert value["mechanism"] == {"type": "generic", "handled": True}
    frames = value["stacktrace"]["frames"]
    assert [f["function"] for f in frames] == ["caught", "outer", "inner"]
    last = frames[-1]
    assert last["module"] == "tests.test_events"
    assert last["filename"] == "tests/test_events.py"
    assert last["abs_path"] == HERE
    assert last["lineno"] == line_of('raise ValueError(f"bad order')
    assert last["context_line"] == '    raise ValueError(f"bad order {order_id}")'
    assert last["pre_context"][-1].startswith("    secret_token = ")
    assert len(last["pre_context"]) == 5
    assert last["post_context"][:2] == ["", ""]
    assert len(last["post_context"]) == 5
    assert all(f["in_app"] for f in frames)
    assert "vars" not in last, "local variables are opt-in"


def test_library_and_stdlib_frames_are_not_in_app() -> None:
    error = caught(json.loads, "{not json")
    frames = exception_chain(error, DEFAULT)[-1]["stacktrace"]["frames"]
    assert frames[0]["function"] == "caught"
    assert frames[0]["in_app"] is True
    assert [f["module"] for f in frames[1:]][:2] == ["json", "json.decoder"]
    assert not any(f["in_app"] for f in frames[1:])
    # relative to the top package's parent, as sentry-sdk writes them
    assert [f["filename"] for f in frames[1:3]] == ["__init__.py", "json/decoder.py"]


@pytest.mark.parametrize(
    ("path", "module", "options", "expected"),
    [
        ("/srv/app/views.py", "app.views", DEFAULT, True),
        ("/srv/venv/lib/python3.11/site-packages/flask/app.py", "flask.app", DEFAULT, False),
        ("/usr/lib/python3/dist-packages/yaml/main.py", "yaml.main", DEFAULT, False),
        ("C:\\venv\\Lib\\site-packages\\x\\y.py", "x.y", DEFAULT, False),
        ("<frozen importlib._bootstrap>", "importlib._bootstrap", DEFAULT, False),
        ("<string>", None, DEFAULT, False),
        (None, "app", DEFAULT, False),
        ("/srv/app/views.py", "app.views", FrameOptions.make(project_root="/srv/app"), True),
        ("/srv/other/x.py", "other.x", FrameOptions.make(project_root="/srv/app"), False),
        ("/srv/application/x.py", "x", FrameOptions.make(project_root="/srv/app"), False),
        (
            "/srv/venv/lib/python3.11/site-packages/mylib/a.py",
            "mylib.a",
            FrameOptions.make(in_app_include=["mylib"]),
            True,
        ),
        (
            "/srv/app/vendor/x.py",
            "app.vendor.x",
            FrameOptions.make(in_app_exclude=["app.vendor"]),
            False,
        ),
        (
            "/srv/app/vendored.py",
            "app.vendored",
            FrameOptions.make(in_app_exclude=["app.vendor"]),
            True,
        ),
    ],
)
def test_in_app_rules(
    path: str | None, module: str | None, options: FrameOptions, expected: bool
) -> None:
    assert in_app(path, module, options) is expected


def test_the_standard_library_is_not_in_app() -> None:
    assert in_app(json.__file__, "json", DEFAULT) is False
    assert in_app(os.path.realpath(json.__file__), "json", DEFAULT) is False


def test_explicit_cause_root_cause_first() -> None:
    def load() -> None:
        try:
            {}["order"]
        except KeyError as error:
            raise RuntimeError("could not load the order") from error

    values = exception_chain(caught(load), DEFAULT)
    assert [v["type"] for v in values] == ["KeyError", "RuntimeError"]
    assert values[0]["mechanism"]["source"] == "__cause__"
    assert values[1]["mechanism"]["type"] == "generic"
    assert values[0]["stacktrace"]["frames"][-1]["context_line"].strip() == '{}["order"]'


def test_implicit_context_and_suppressed_context() -> None:
    def during() -> None:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            raise LookupError("while handling")  # noqa: B904

    def suppressed() -> None:
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            raise LookupError("hidden cause") from None

    values = exception_chain(caught(during), DEFAULT)
    assert [v["type"] for v in values] == ["ZeroDivisionError", "LookupError"]
    assert values[0]["mechanism"]["source"] == "__context__"
    assert [v["type"] for v in exception_chain(caught(suppressed), DEFAULT)] == ["LookupError"]


def test_a_cycle_in_the_chain_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    assert [v["value"] for v in exception_chain(first, DEFAULT)] == ["b", "a"]


def test_never_raised_has_no_stacktrace() -> None:
    (value,) = exception_chain(ValueError("made, not raised"), DEFAULT)
    assert value == {
        "type": "ValueError",
        "value": "made, not raised",
        "mechanism": {"type": "generic", "handled": True},
    }


def test_type_names_are_qualified_and_modules_kept() -> None:
    class Outer:
        class Failure(Exception):
            pass

    (value,) = exception_chain(Outer.Failure("x"), DEFAULT)
    assert value["type"].endswith("Outer.Failure")
    assert value["module"] == "tests.test_events"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="add_note is Python 3.11+")
def test_notes_follow_the_value() -> None:
    error = ValueError("base")
    error.add_note("while saving order 5")
    assert exception_chain(error, DEFAULT)[0]["value"] == "base\nwhile saving order 5"


def test_unprintable_exception() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert exception_chain(Unprintable(), DEFAULT)[0]["value"] == "<unprintable Unprintable object>"


def test_locals_are_opt_in_repr_and_bounded() -> None:
    class NoRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    def failing(big: str, odd: object) -> None:
        raise ValueError("x")

    options = FrameOptions.make(include_locals=True)
    frames = exception_chain(caught(failing, "y" * 5000, NoRepr()), options)[0]["stacktrace"][
        "frames"
    ]
    variables = frames[-1]["vars"]
    assert len(variables["big"]) == MAX_LOCAL_REPR
    assert variables["big"].endswith("...")
    assert variables["odd"] == "<unrepresentable NoRepr object>"
    assert frames[0]["vars"]["function"].startswith("<function ")


def test_a_frame_without_source() -> None:
    namespace: dict[str, object] = {"__name__": "generated"}
    exec(compile("def f():\n    raise ValueError('x')\n", "<generated>", "exec"), namespace)  # noqa: S102
    frames = exception_chain(caught(namespace["f"]), DEFAULT)[0]["stacktrace"]["frames"]
    assert frames[-1] == {
        "filename": "<generated>",
        "abs_path": "<generated>",
        "function": "f",
        "module": "generated",
        "lineno": 2,
        "in_app": False,
    }


def test_serialize_a_live_frame() -> None:
    frame: FrameType = sys._getframe()
    serialized = serialize_frame(frame, frame.f_lineno, DEFAULT)
    assert serialized["function"] == "test_serialize_a_live_frame"
    assert "sys._getframe()" not in serialized["context_line"]


# A module in two versions: `fail` raises the same bug from the same line of code, which the
# second version moves below `other`.
BEFORE = """def other():
    raise KeyError("another bug")


def fail():
    raise ValueError("the same bug")
"""
AFTER = """def fail():
    raise ValueError("the same bug")


def other():
    raise KeyError("another bug")
"""
SAME_BUG = '    raise ValueError("the same bug")'


def write_module(directory: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> ModuleType:
    """A module of its own name in `directory`, imported (no .pyc: a rewrite within one
    second could load the old one)."""
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    name = f"deployed_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(source)
    module = importlib.import_module(name)
    monkeypatch.delitem(sys.modules, name)
    sys.modules[name] = module
    return module


def rewrite(module: ModuleType, source: str) -> None:
    """A deploy: new text, a later modification time."""
    path = Path(module.__file__ or "")
    modified = path.stat().st_mtime
    path.write_text(source)
    os.utime(path, (modified + 10, modified + 10))


def last_frame(error: BaseException) -> dict[str, object]:
    return exception_chain(error, DEFAULT)[-1]["stacktrace"]["frames"][-1]


def test_a_changed_file_is_read_again_as_traceback_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_module(tmp_path, monkeypatch, "def fail():\n    raise ValueError('one')\n")
    assert last_frame(caught(module.fail))["context_line"] == "    raise ValueError('one')"
    rewrite(module, "def fail():\n    raise ValueError('two')  # deployed\n\nDEPLOYED = True\n")
    error = caught(module.fail)  # the code loaded before the deploy
    frame = last_frame(error)
    assert frame["context_line"] == "    raise ValueError('two')  # deployed", "not the stale cache"
    assert frame["post_context"] == ["", "DEPLOYED = True"]
    assert frame["context_line"].strip() == traceback.extract_tb(error.__traceback__)[-1].line


def test_a_reloaded_module_shows_its_own_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The line cache held the old text, where line 2 is another function's line."""
    module = write_module(tmp_path, monkeypatch, BEFORE)
    assert last_frame(caught(module.fail))["context_line"] == SAME_BUG
    rewrite(module, AFTER)
    importlib.reload(module)
    frame = last_frame(caught(module.fail))
    assert (frame["lineno"], frame["context_line"]) == (2, SAME_BUG)
    assert frame["post_context"] == ["", "", "def other():", '    raise KeyError("another bug")']


def test_code_older_than_its_file_shows_no_other_functions_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loaded, then deployed over before its first error: the file's line 6 is now another
    function's. No source lines are better than wrong ones."""
    module = write_module(tmp_path, monkeypatch, BEFORE)
    rewrite(module, AFTER)
    frame = last_frame(caught(module.fail))
    assert frame["lineno"] == 6
    assert frame.get("context_line") != '    raise KeyError("another bug")'
    assert not {"pre_context", "context_line", "post_context"} & frame.keys()


def test_code_older_than_its_file_keeps_the_lines_it_was_loaded_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy before the restart: the old process still runs the old code, and the lines it
    read before the deploy are that code's (so the bug stays one issue until the restart)."""
    module = write_module(tmp_path, monkeypatch, BEFORE)
    assert last_frame(caught(module.fail))["context_line"] == SAME_BUG
    rewrite(module, AFTER)
    for _ in range(2):  # the second capture no longer finds the old lines in linecache
        frame = last_frame(caught(module.fail))
        assert (frame["lineno"], frame["context_line"]) == (6, SAME_BUG)


def test_decorated_and_async_functions_fit_their_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (
        "import functools\n\n\n"
        "@functools.lru_cache(\n    maxsize=None,\n)\n"
        "def cached():\n    raise ValueError('cached')\n\n\n"
        "async def later():\n    raise ValueError('later')\n"
    )
    module = write_module(tmp_path, monkeypatch, source)
    rewrite(module, source + "\n# deployed, same lines\n")
    assert last_frame(caught(module.cached))["context_line"] == "    raise ValueError('cached')"
    coroutine = module.later()
    error = caught(coroutine.send, None)
    assert last_frame(error)["context_line"] == "    raise ValueError('later')"


def test_trace_context_of_the_active_span() -> None:
    assert trace_context() is None
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("checkout") as span:
        context = trace_context()
    assert context == {
        "type": "trace",
        "trace_id": format(span.get_span_context().trace_id, "032x"),
        "span_id": format(span.get_span_context().span_id, "016x"),
    }
    assert len(context["trace_id"]) == 32
    assert len(context["span_id"]) == 16
