"""Air quality: Korea's Comprehensive Air-quality Index (CAI), the US EPA AQI as an option, and their live computation."""

from citywall.air.aqi import AqiResult, aqi, aqi_sub_index
from citywall.air.cai import GRADES, CaiResult, cai, pm_predicted_24h, sub_index

__all__ = ["GRADES", "AqiResult", "CaiResult", "aqi", "aqi_sub_index", "cai", "pm_predicted_24h", "sub_index"]
