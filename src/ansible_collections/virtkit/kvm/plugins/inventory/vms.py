# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.vms: the VMs of the given KVM/QEMU hosts as an inventory."""

from __future__ import annotations

DOCUMENTATION = r"""
name: vms
short_description: The VMs of KVM/QEMU hosts, with their state, as an inventory
description:
  - Lists the VMs of each host in O(hosts), one bulk call per host, and makes each VM an inventory host with its
    state, memory and vCPUs as variables.
  - Each VM is in the group C(virtkit_<host>) of the host it runs on and in C(state_<state>) (C(state_running),
    C(state_stopped) ...). O(compose), O(groups) and O(keyed_groups) add more.
  - A VM found on two hosts (a migration that is ending) is listed once, on the host where it runs.
  - The inventory file's name must end in C(virtkit.yml) or C(virtkit.yaml).
author:
  - virtkit developers (@virtkit)
requirements:
  - virtkit (the Python SDK) in the Python that runs ansible
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin.
    type: str
    required: true
    choices: [virtkit.kvm.vms]
  hosts:
    description:
      - The hypervisor hosts, by name, each with its libvirt C(uri) and optionally its C(ssh) settings (as in the
        modules' C(ssh) option).
    type: dict
    required: true
  states:
    description: Only VMs in these states (running, paused, stopped, saved, crashed ...). All by default.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
# lab.virtkit.yml
plugin: virtkit.kvm.vms
hosts:
  h1: {uri: "qemu+ssh://root@h1/system"}
  h2: {uri: "qemu+ssh://root@h2/system"}
states: [running]
keyed_groups:
  - key: virtkit_memory // 1073741824
    prefix: memory_gib
"""

import traceback
from typing import Any

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

try:
    import virtkit
except ImportError:
    HAS_VIRTKIT = False
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_VIRTKIT = True
    IMPORT_ERROR = None

_PRECEDENCE = {"running": 0, "paused": 1}


class InventoryModule(BaseInventoryPlugin, Constructable):  # type: ignore[misc]  # ansible-core ships no types
    NAME = "virtkit.kvm.vms"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("virtkit.yml", "virtkit.yaml"))

    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if not HAS_VIRTKIT:
            raise AnsibleParserError(f"the virtkit Python package is needed: {IMPORT_ERROR}")
        hosts = self.get_option("hosts")
        if not isinstance(hosts, dict) or not hosts:
            raise AnsibleParserError("hosts: must map each host's name to its uri (and ssh)")
        wanted = set(self.get_option("states") or ())
        found: dict[str, tuple[str, Any]] = {}
        for name, settings in hosts.items():
            if not isinstance(settings, dict) or not isinstance(settings.get("uri"), str):
                raise AnsibleParserError(f"hosts.{name}.uri: must be a libvirt URI")
            try:
                with virtkit.connect(settings["uri"], ssh=settings.get("ssh")) as host:
                    statuses = host.statuses()
            except virtkit.VirtkitError as exc:
                raise AnsibleParserError(f"hosts.{name}: {exc}") from exc
            for status in statuses:
                state = status.state.value
                if wanted and state not in wanted:
                    continue
                seen = found.get(status.name)
                if seen is None or _PRECEDENCE.get(state, 9) < _PRECEDENCE.get(seen[1].state.value, 9):
                    found[status.name] = (name, status)
        for vm_name, (host_name, status) in sorted(found.items()):
            self._add(vm_name, host_name, hosts[host_name]["uri"], status)

    def _add(self, name: str, host: str, uri: str, status: Any) -> None:
        self.inventory.add_host(name)
        variables = {
            "virtkit_host": host,
            "virtkit_uri": uri,
            "virtkit_uuid": status.uuid,
            "virtkit_state": status.state.value,
            "virtkit_reason": status.reason,
            "virtkit_vcpus": status.vcpus,
            "virtkit_memory": status.memory,
            "virtkit_max_memory": status.max_memory,
        }
        for key, value in variables.items():
            self.inventory.set_variable(name, key, value)
        for group in (f"virtkit_{host}", f"state_{status.state.value}"):
            safe = self._sanitize_group_name(group)
            self.inventory.add_group(safe)
            self.inventory.add_child(safe, name)
        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), variables, name, strict=strict)
        self._add_host_to_composed_groups(self.get_option("groups"), variables, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, name, strict=strict)
