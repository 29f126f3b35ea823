"""Air quality: Korea's Comprehensive Air-quality Index (CAI) and its live computation."""

from citywall.air.cai import GRADES, CaiResult, cai, pm_predicted_24h, sub_index

__all__ = ["GRADES", "CaiResult", "cai", "pm_predicted_24h", "sub_index"]
