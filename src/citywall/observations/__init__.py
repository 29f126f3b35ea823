"""Things, Datastreams and Observations (OGC SensorThings), and the quantities they measure."""
