"""The ``<devices>`` of a domain, one module per kind of device virtkit reads or writes."""
