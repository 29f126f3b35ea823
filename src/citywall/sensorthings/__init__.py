"""OGC SensorThings API v1.1: the platform's Things, Datastreams and Observations as the standard
gives them (read over HTTP, Observations created over HTTP and over the MQTT extension)."""
