"""The live picture and the event bus that moves changes to subscribers."""
