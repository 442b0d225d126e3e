"""``python -m orchestrator.devices agent|broker``: the processes ``LocalFleet`` starts.

The ``stepweave agent`` and ``stepweave broker`` commands call the same functions; this
entry point exists so agent and broker processes can be spawned without the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from ..errors import DeviceError
from ..telemetry.sdk import configure_from_env
from .agent import DeviceAgent, parse_labels, run_agent
from .broker import run_broker
from .fleet import AGENT_READY
from .loading import load_tools
from .settings import resolve_namespace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.devices")
    commands = parser.add_subparsers(dest="command", required=True)
    agent = commands.add_parser("agent", help="serve tools to orchestrators as a device")
    agent.add_argument("--id", required=True, help="device id")
    agent.add_argument("--tools", action="append", required=True, help="module name or .py path")
    agent.add_argument("--broker", default=None, help="broker URL (default: $STEPWEAVE_BROKER)")
    agent.add_argument("--label", action="append", default=[], help="key=value (repeatable)")
    agent.add_argument("--max-concurrency", type=int, default=4)
    agent.add_argument(
        "--namespace", default=None, help="topic prefix (default: $STEPWEAVE_NAMESPACE or stepweave)"
    )
    agent.add_argument("--heartbeat", type=float, default=2.0, help="seconds between heartbeats")
    agent.add_argument("--keepalive", type=int, default=10, help="MQTT keepalive in seconds")
    broker = commands.add_parser("broker", help="run a local broker in the foreground")
    broker.add_argument("--port", type=int, default=None)
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--kind", choices=["auto", "mosquitto", "amqtt"], default="auto")
    broker.add_argument("--password-file", default=None, help="Mosquitto password file")
    broker.add_argument("--acl-file", default=None, help="Mosquitto ACL file")
    broker.add_argument("--tls-cert", default=None, help="TLS certificate (PEM) of the listener")
    broker.add_argument("--tls-key", default=None, help="its private key (PEM)")
    broker.add_argument(
        "--allow-anonymous", action="store_true", help="listen beyond loopback without a password file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("STEPWEAVE_LOG_LEVEL", "WARNING").upper(),
        format=f"%(levelname)s [{args.command} {getattr(args, 'id', '')} %(process)d] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "agent":
            tools = load_tools(args.tools)
            labels = parse_labels(args.label)

            def ready(device: DeviceAgent) -> None:
                print(f"{AGENT_READY} {device.device_id} pid={os.getpid()}", flush=True)

            asyncio.run(
                run_agent(
                    args.id,
                    tools=tools,
                    broker=args.broker,
                    labels=labels,
                    max_concurrency=args.max_concurrency,
                    namespace=resolve_namespace(args.namespace),
                    heartbeat_interval=args.heartbeat,
                    keepalive=args.keepalive,
                    on_ready=ready,
                )
            )
        else:

            def listening(url: str, kind: str) -> None:
                print(f"stepweave broker ready {url} ({kind})", flush=True)

            asyncio.run(
                run_broker(
                    args.port,
                    host=args.host,
                    kind=args.kind,
                    password_file=args.password_file,
                    acl_file=args.acl_file,
                    certfile=args.tls_cert,
                    keyfile=args.tls_key,
                    allow_anonymous=args.allow_anonymous,
                    on_ready=listening,
                )
            )
    except (ValueError, DeviceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    configure_from_env()  # OpenTelemetry from OTEL_* variables, as the stepweave command does
    sys.exit(main())
