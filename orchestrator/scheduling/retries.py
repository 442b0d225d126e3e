"""Retries with exponential backoff and jitter (tenacity), for tasks that allow them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ..errors import ErrorKind
from ..result import TaskError, is_retryable
from .node import Node

__all__ = ["OnRetry", "with_retries"]

#: Told before each wait: the node, the attempt that failed, its error and the delay.
OnRetry = Callable[[Node, int, TaskError, float], None]


async def with_retries(
    node: Node,
    attempt: Callable[[Node, int], Awaitable[Any]],
    *,
    backoff: float,
    max_backoff: float,
    on_retry: OnRetry,
) -> Any:
    """Make up to ``node.retries + 1`` attempts while the error is retryable.

    Attempt numbers count on from the attempts made before a resume (``node.offset``).
    """

    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        error = TaskError.from_exception(exc) if exc else TaskError(ErrorKind.UNKNOWN, "unknown", True)
        delay = state.next_action.sleep if state.next_action else 0.0
        on_retry(node, state.attempt_number + node.offset, error, delay)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(node.retries + 1),
        wait=wait_exponential_jitter(multiplier=backoff, max=max_backoff, jitter=backoff),
        retry=retry_if_exception(is_retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for try_ in retrying:
        with try_:
            return await attempt(node, try_.retry_state.attempt_number + node.offset)
    raise AssertionError("unreachable: tenacity either returns or reraises")
