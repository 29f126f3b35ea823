"""Alerts: rules evaluated on the live stream; first, Korea's fine-dust advisories."""

from citywall.alerts.advisory import PM10, PM25, AdvisoryRule, advisory_levels

__all__ = ["PM10", "PM25", "AdvisoryRule", "advisory_levels"]
