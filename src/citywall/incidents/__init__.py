"""Incidents: fire, rescue, EMS and disaster cases with their official handling steps."""

from citywall.incidents.lifecycle import KINDS, Incident, IncidentKind, TransitionError

__all__ = ["KINDS", "Incident", "IncidentKind", "TransitionError"]
