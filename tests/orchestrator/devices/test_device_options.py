"""The CLI's device options name the environment variables the device code reads.

``orchestrator.cli.device_options`` declares them apart from the device code (so that a
command merely accepting ``--broker`` does not import MQTT); this keeps the names equal.
"""

from __future__ import annotations

import typing

from orchestrator.cli import device_options
from orchestrator.devices.settings import BROKER_ENV, NAMESPACE_ENV
from orchestrator.devices.trust import DEVICE_LABELS_ENV, DEVICE_TRUST_ENV, DEVICES_ENV


def _option(alias: object) -> typing.Any:
    return typing.get_args(alias)[1]


def test_the_option_environment_variables_are_the_ones_the_device_code_reads() -> None:
    assert _option(device_options.BrokerOption).envvar == BROKER_ENV
    assert _option(device_options.NamespaceOption).envvar == NAMESPACE_ENV
    assert f"${DEVICES_ENV}" in _option(device_options.DeviceOption).help
    labels_help = _option(device_options.DeviceLabelOption).help
    assert f"${DEVICE_LABELS_ENV}" in labels_help and f"${DEVICE_TRUST_ENV}" in labels_help
