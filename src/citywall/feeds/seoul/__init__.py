"""Seoul Open API connectors: RealtimeCityAir, citydata, TrafficInfo and S-DoT (docs/seoul-open-api.md).

`recorded/` holds recorded answers in the services' documented formats (labelled as samples) that
the tests serve from a local HTTP server; the feed itself never reads them.
"""

from citywall.feeds.seoul.feed import SeoulFeed

__all__ = ["SeoulFeed"]
