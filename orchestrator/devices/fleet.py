"""Agents in child processes, and ``LocalFleet``: a broker plus N agents on this machine.

``stepweave run FLOW.yaml --local-agents N`` uses ``LocalFleet`` so device steps work
out of the box; tests use ``spawn_agent`` for agents they can ``kill -9`` or SIGSTOP.
The broker URL reaches the children through ``STEPWEAVE_BROKER``, not their command
line, so credentials never show in a process listing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from types import TracebackType

from ..errors import DeviceError
from .broker import DEVELOPMENT_WARNING, LocalBroker
from .protocol import DEFAULT_NAMESPACE, validate_device_id
from .settings import BROKER_ENV

__all__ = ["AgentProcess", "LocalFleet", "spawn_agent"]

_log = logging.getLogger("stepweave.devices.fleet")

#: What ``python -m orchestrator.devices agent`` prints once it is online.
AGENT_READY = "stepweave-agent ready"


class AgentProcess:
    """A device agent in a child process."""

    def __init__(self, device_id: str, process: asyncio.subprocess.Process) -> None:
        self.device_id = device_id
        self.process = process
        self._drain: asyncio.Task[None] | None = None
        self._paused = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def drain_output(self, stream: asyncio.StreamReader) -> None:
        """Read and drop the rest of ``stream`` (its output, once online) so a full pipe never
        blocks the agent; ``stop`` waits for the reading to end."""
        self._drain = asyncio.create_task(_drain(stream), name=f"stepweave-agent-{self.device_id}-stdout")

    def kill(self) -> None:
        """``kill -9``: no clean disconnect, no offline status; only the broker notices."""
        if self.process.returncode is None:
            self.process.kill()

    def pause(self) -> None:
        """SIGSTOP: the process freezes with its connection open (it goes silent)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self.process.returncode is None and self._paused:
            self.process.send_signal(signal.SIGCONT)
        self._paused = False

    async def stop(self, grace: float = 5.0) -> int:
        """Ask it to go offline (SIGTERM), kill it after ``grace`` seconds; return its exit status."""
        self.resume()
        if self.process.returncode is None:
            self.process.terminate()
        try:
            async with asyncio.timeout(grace):
                code = await self.process.wait()
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        if self._drain is not None:
            await self._drain
        return code


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def spawn_agent(
    device_id: str,
    *,
    broker: str,
    tools: Sequence[str],
    labels: Mapping[str, str] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    max_concurrency: int = 4,
    heartbeat_interval: float = 2.0,
    keepalive: int = 10,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 30.0,
) -> AgentProcess:
    """Start ``python -m orchestrator.devices agent`` and return once it is online."""
    validate_device_id(device_id)
    command = [sys.executable, "-m", "orchestrator.devices", "agent", "--id", device_id]
    for spec in tools:
        command += ["--tools", spec]
    for key, value in (labels or {}).items():
        command += ["--label", f"{key}={value}"]
    command += [
        "--max-concurrency",
        str(max_concurrency),
        "--namespace",
        namespace,
        "--heartbeat",
        str(heartbeat_interval),
        "--keepalive",
        str(keepalive),
    ]
    child_env = {**os.environ, **(env or {}), BROKER_ENV: broker, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, env=child_env
    )
    agent = AgentProcess(device_id, process)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(ready_timeout):
            while True:
                line = (await process.stdout.readline()).decode(errors="replace")
                if not line:
                    code = await process.wait()
                    raise DeviceError(f"agent {device_id!r} exited with status {code} before it was online")
                if line.startswith(AGENT_READY):
                    break
    except BaseException as exc:
        await agent.stop()
        if isinstance(exc, TimeoutError):
            raise DeviceError(f"agent {device_id!r} was not online within {ready_timeout:g}s") from None
        raise
    agent.drain_output(process.stdout)
    return agent


class LocalFleet:
    """A local broker (unless ``broker`` is given) and ``agents`` agent processes.

    Agents are named ``{id_prefix}-1`` … ``{id_prefix}-N`` and all offer the tools of the
    ``tools`` modules (import names or ``.py`` paths, importable from the working
    directory). ``url`` is the broker to give the orchestrator.
    """

    def __init__(
        self,
        agents: int,
        *,
        tools: Sequence[str],
        broker: str | None = None,
        labels: Mapping[str, str] | None = None,
        namespace: str = DEFAULT_NAMESPACE,
        max_concurrency: int = 4,
        heartbeat_interval: float = 2.0,
        id_prefix: str = "local",
        ready_timeout: float = 30.0,
    ) -> None:
        if agents < 0:
            raise ValueError(f"agents must be >= 0, got {agents}")
        if agents and not tools:
            raise ValueError("local agents need at least one tools module (--tools)")
        self._count = agents
        self._tools = list(tools)
        self._broker_url = broker
        self._labels = dict(labels or {})
        self._namespace = namespace
        self._max_concurrency = max_concurrency
        self._heartbeat_interval = heartbeat_interval
        self._prefix = id_prefix
        self._ready_timeout = ready_timeout
        self.broker: LocalBroker | None = None
        self.agents: list[AgentProcess] = []
        self._stack: AsyncExitStack | None = None

    @property
    def url(self) -> str:
        if self._broker_url is not None:
            return self._broker_url
        if self.broker is None:
            raise RuntimeError("enter the LocalFleet first")
        return self.broker.url

    async def __aenter__(self) -> LocalFleet:
        async with AsyncExitStack() as stack:
            # Unwound in reverse on exit (or on a failed start): agents, then the broker.
            if self._broker_url is None:
                broker = LocalBroker()
                if broker.kind == "amqtt":
                    _log.warning(DEVELOPMENT_WARNING)
                self.broker = await stack.enter_async_context(broker)
                stack.callback(setattr, self, "broker", None)
            stack.push_async_callback(self._stop_agents)
            await self._start_agents()
            self._stack = stack.pop_all()
        return self

    async def _start_agents(self) -> None:
        started = await asyncio.gather(
            *(
                spawn_agent(
                    f"{self._prefix}-{i + 1}",
                    broker=self.url,
                    tools=self._tools,
                    labels=self._labels,
                    namespace=self._namespace,
                    max_concurrency=self._max_concurrency,
                    heartbeat_interval=self._heartbeat_interval,
                    ready_timeout=self._ready_timeout,
                )
                for i in range(self._count)
            ),
            return_exceptions=True,
        )
        self.agents = [a for a in started if isinstance(a, AgentProcess)]
        failures = [e for e in started if isinstance(e, BaseException)]
        if failures:
            raise failures[0]

    async def _stop_agents(self) -> None:
        agents, self.agents = self.agents, []
        await asyncio.gather(*(agent.stop() for agent in agents))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
