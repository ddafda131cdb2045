"""virtkit.lab."""
