"""virtkit.backends."""
