"""A stand-in of AI Gen Studio's Product Photo API for integration tests and the demo."""

from bridge.simulator.app import create_simulator
from bridge.simulator.arguments import add_arguments, settings_from_args
from bridge.simulator.settings import KeyLimits, SimulatorSettings
from bridge.simulator.state import Simulator

__all__ = [
    "KeyLimits",
    "Simulator",
    "SimulatorSettings",
    "add_arguments",
    "create_simulator",
    "settings_from_args",
]
