"""Policies over several hosts: placing VMs, draining a host (and, later, failover)."""
