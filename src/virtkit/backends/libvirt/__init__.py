"""virtkit.backends.libvirt."""
