"""tools/async_to_sync.py: the sync twins are generated from their asyncio source, and current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from types import ModuleType

import pytest

from .conftest import REPO

TOOL = REPO / "tools" / "async_to_sync.py"


def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("async_to_sync", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_twins_are_current() -> None:
    done = subprocess.run(
        [sys.executable, str(TOOL), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules() -> None:
    """Names are renamed in prose too (nothing else is: the await of a docstring stays)."""
    source = textwrap.dedent(
        '''
        """AsyncConnector's twin: `await connector.run(call)`."""
        import asyncio
        from collections.abc import AsyncIterator, Awaitable, Callable
        from .connection_async import AsyncConnector, AsyncSource


        class Client:
            def __init__(self, source: AsyncSource) -> None:
                self._connector = AsyncConnector(source)  # an AsyncConnector, not a pool

            async def rows(self, compute: Callable[[], Awaitable[int]]) -> AsyncIterator[int]:
                async with self._connector.statement() as conn:
                    async for row in await conn.execute(f"SELECT {AsyncSource}", [await compute()]):
                        yield row

            def later(self) -> asyncio.Task[int]:
                return self._tasks.start(self._value())

            async def aclose(self) -> None:
                if True:  # ASYNC
                    await asyncio.sleep(0)
                else:
                    print("sync")  # kept, one level out
                await self._connector.close()
        '''
    )
    assert tool().to_sync(source, "example.py") == textwrap.dedent(
        '''
        """Connector's twin: `await connector.run(call)`."""
        import asyncio
        from collections.abc import Iterator, Awaitable, Callable
        from .connection import Connector, Source


        class Client:
            def __init__(self, source: Source) -> None:
                self._connector = Connector(source)  # an Connector, not a pool

            def rows(self, compute: Callable[[], int]) -> Iterator[int]:
                with self._connector.statement() as conn:
                    for row in conn.execute(f"SELECT {Source}", [compute()]):
                        yield row

            def later(self) -> int:
                return self._tasks.start(self._value())

            def close(self) -> None:
                print("sync")  # kept, one level out
                self._connector.close()
        '''
    )


def test_an_await_inside_an_f_string_is_refused() -> None:
    generator = tool()
    with pytest.raises(generator.GenerationError, match="f-string"):
        generator.to_sync('async def f():\n    return f"{await g()}"\n', "example.py")
