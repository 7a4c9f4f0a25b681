"""A stand-in of AI Gen Studio's Product Photo API for integration tests and the demo."""

from bridge.devtools.simulator.app import create_simulator
from bridge.devtools.simulator.arguments import add_arguments, settings_from_args
from bridge.devtools.simulator.settings import KeyLimits, SimulatorSettings
from bridge.devtools.simulator.state import Simulator

__all__ = [
    "KeyLimits",
    "Simulator",
    "SimulatorSettings",
    "add_arguments",
    "create_simulator",
    "settings_from_args",
]
