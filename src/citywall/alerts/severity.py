"""The five severities shared by alarms and incidents, lowest first.

One scale for both so that "focus the wall on anything high or worse" and "escalate critical alarms"
read the same way whatever raised them.
"""

from __future__ import annotations

SEVERITIES = ("informational", "low", "medium", "high", "critical")
SEVERITY_KO = {"informational": "정보", "low": "낮음", "medium": "보통", "high": "높음", "critical": "심각"}


def rank(name: str) -> int:
    """0 for informational up to 4 for critical; a clear error for anything else."""
    try:
        return SEVERITIES.index(name)
    except ValueError:
        raise ValueError(f"unknown severity {name!r}; use one of {', '.join(SEVERITIES)}") from None
