"""Owl-bus: night-bus route design from origin-destination demand.

The modules are named after what they hold: `network` (the street network and demand a plan is
made on, and Mumford's benchmark file format), `evaluate` (the standard passenger and operator
measures of a route set), `planner` (the metaheuristic that designs route sets) with its moves,
seed and candidate pools in `moves`, `synthetic` (generated SIMULATED test networks). The package
import stays light on purpose: this file imports nothing, so `citywall --help` loads no numpy or scipy.
"""
