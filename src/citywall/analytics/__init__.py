"""Analytics over the city model: planning tools that work on demand and networks rather than on live readings."""
