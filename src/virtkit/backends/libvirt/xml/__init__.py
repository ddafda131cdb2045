"""ElementTree builders and parsers for libvirt XML."""
