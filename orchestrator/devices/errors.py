"""The device errors: every one is a ``DeviceError``, so callers catch one type::

    DeviceError (orchestrator.errors)
    ├── BrokerConnectionError   the broker refused us or cannot be reached (aiomqtt errors
    │                           are converted to this at the boundary)
    ├── DeviceUnavailable       no live device can take the task (none advertises the tool
    │                           with these labels, or all that did were lost); retryable
    ├── MessageRejected         a request cannot be sent: its arguments are not JSON or
    │                           exceed the payload limit; not retryable
    └── RemoteTaskError         the tool ran on a device and failed; ``retryable`` and
                                ``remote_type`` are what the device reported

The scheduler reads ``retryable`` to decide on another attempt, so each class states it.
"""

from __future__ import annotations

from typing import Any

from ..errors import DeviceError, rebuild

__all__ = ["BrokerConnectionError", "DeviceUnavailable", "MessageRejected", "RemoteTaskError"]


class BrokerConnectionError(DeviceError):
    """The broker could not be reached, or refused our credentials."""

    retryable = True


class DeviceUnavailable(DeviceError):
    """No live device can run the task. Retryable: a device may come back or join."""

    retryable = True


class MessageRejected(DeviceError):
    """A message could not be sent as the protocol requires (too large, not JSON)."""

    retryable = False


class RemoteTaskError(DeviceError):
    """The tool failed on a device; the message is the device's, the device id is ours."""

    def __init__(self, message: str, *, device_id: str, remote_type: str, retryable: bool) -> None:
        super().__init__(message)
        self.device_id = device_id
        self.remote_type = remote_type
        self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:
        # The options are keyword-only, which Exception's own reduce cannot pass.
        options = {"device_id": self.device_id, "remote_type": self.remote_type, "retryable": self.retryable}
        return (rebuild, (type(self), self.args, options), vars(self))
