"""virtkit.models."""
