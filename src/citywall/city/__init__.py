"""The city model: districts, dongs and regions, loaded from data."""

from citywall.city.loader import CityConfigError, load_city
from citywall.city.model import Area, City, Region

__all__ = ["Area", "City", "CityConfigError", "Region", "load_city"]
