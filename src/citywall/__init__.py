"""citywall: the live city platform behind a digital mayor's office."""

__version__ = "0.1.0"
