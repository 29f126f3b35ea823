"""The built-in simulator: the offline default feed, a simulated Seoul.

Modules, by what they hold: `noise` (seeded, order-free randomness), `timebase` (Seoul local
time, seasons, the sun), `weather` (KMA Seoul station and the city's weather), `episodes`
(yellow dust, winter smog, ozone), `air` (the 25 district air stations), `sdot` (S-DoT street
sensors and their failures), `roads` (road link speeds), `hotspots` (the 116 real-time city-data
places), `profiles` (daily traffic and activity curves), `feed` (the Feed itself). Place data
lives in `data/*.yaml`. What each pattern is calibrated on: docs/simulator.md.
"""

from citywall.feeds.simulator.feed import COMPONENTS, SimulatorFeed

__all__ = ["COMPONENTS", "SimulatorFeed"]
