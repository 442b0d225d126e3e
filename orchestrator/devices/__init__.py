"""Remote device agents over MQTT: the protocol, the agent, the dispatcher, local brokers.

```python
from orchestrator.devices import DeviceAgent, DeviceExecutor

async with DeviceAgent("dev-1", tools=[ping], broker="mqtt://127.0.0.1:1883"):   # on a device
    ...
async with DeviceExecutor(broker="mqtt://127.0.0.1:1883") as devices:               # orchestrator
    await Orchestrator(tools=[ping], executors={"device": devices}).run(graph)
```

See ``docs/devices.md`` for the protocol, failure handling and the Mosquitto ACL, and
``orchestrator.devices.errors`` for the errors.
"""

from .agent import DeviceAgent, current_device, parse_labels, run_agent
from .broker import BrokerKind, LocalBroker, find_mosquitto, mosquitto_config, run_broker
from .dispatcher import DeviceExecutor
from .errors import BrokerConnectionError, DeviceUnavailable, MessageRejected, RemoteTaskError
from .fleet import AgentProcess, LocalFleet, spawn_agent
from .loading import load_tools
from .protocol import Topics
from .registry import DeviceInfo
from .security import mosquitto_acl, mosquitto_password_line, write_password_file
from .settings import BrokerSettings, redact_url
from .trust import DeviceTrust

__all__ = [
    "AgentProcess",
    "BrokerConnectionError",
    "BrokerKind",
    "BrokerSettings",
    "DeviceAgent",
    "DeviceExecutor",
    "DeviceInfo",
    "DeviceTrust",
    "DeviceUnavailable",
    "LocalBroker",
    "LocalFleet",
    "MessageRejected",
    "RemoteTaskError",
    "Topics",
    "current_device",
    "find_mosquitto",
    "load_tools",
    "mosquitto_acl",
    "mosquitto_config",
    "mosquitto_password_line",
    "parse_labels",
    "redact_url",
    "run_agent",
    "run_broker",
    "spawn_agent",
    "write_password_file",
]
