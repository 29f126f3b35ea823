"""The web API: FastAPI routes over the platform."""
