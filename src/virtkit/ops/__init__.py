"""virtkit.ops."""
