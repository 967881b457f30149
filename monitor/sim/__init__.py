"""A simulated LibertAI network (gateway and CRN hosts) on loopback ports, for the demo, the tests
and the benchmarks. See "The simulated network" in README.md."""

from monitor.sim.network import SimHostInfo, SimNetwork
from monitor.sim.presets import PRESETS, Preset, load_scenario
from monitor.sim.specs import Behaviour, Dist, Flap, GatewaySpec, HostSpec, ModelSpec, Scenario

__all__ = [
    "PRESETS",
    "Behaviour",
    "Dist",
    "Flap",
    "GatewaySpec",
    "HostSpec",
    "ModelSpec",
    "Preset",
    "Scenario",
    "SimHostInfo",
    "SimNetwork",
    "load_scenario",
]
