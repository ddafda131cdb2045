#!/usr/bin/python
# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.vm_info: the VMs of a host with their state."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_info
short_description: The VMs of a KVM/QEMU host with their state, memory and vCPUs
description:
  - Lists every VM of the host of O(uri) with its state, memory and vCPUs, read in one bulk call whatever the number
    of VMs. VMs made by other tools are listed too.
  - With O(name), only that VM, with its spec and checkpoints (RV(vms) is empty when it does not exist).
author:
  - virtkit developers (@virtkit)
extends_documentation_fragment:
  - virtkit.kvm.host
options:
  name:
    description: Only this VM, with its spec and checkpoints.
    type: str
attributes:
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Changes nothing, so there is no diff.
    support: N/A
  platform:
    description: Runs where the Python with virtkit can reach the host's libvirt.
    support: full
    platforms: posix
"""

EXAMPLES = r"""
- name: Every VM of the host
  virtkit.kvm.vm_info:
    uri: qemu:///system
  register: listing

- name: One VM, with its spec and checkpoints
  virtkit.kvm.vm_info:
    uri: qemu:///system
    name: web1
  register: web1

- name: Say its state
  ansible.builtin.debug:
    msg: "{{ web1.vms[0].state if web1.vms else 'absent' }}"
"""

RETURN = r"""
vms:
  description: The VMs, each as the host lists it.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The VM's name.
      type: str
    uuid:
      description: The VM's UUID.
      type: str
    state:
      description: running, paused, stopped, saved, crashed ...
      type: str
    reason:
      description: Why it is in that state, as the hypervisor says.
      type: str
    vcpus:
      description: vCPUs it has now (null where the host does not report it).
      type: int
    memory:
      description: Memory it has now, in bytes.
      type: int
    max_memory:
      description: Memory it may grow to, in bytes.
      type: int
    host:
      description: The libvirt URI of its host.
      type: str
    spec:
      description: With O(name), the VM's neutral spec (null for a VM virtkit does not model).
      type: dict
      returned: when O(name) is given
    checkpoints:
      description: With O(name), the names of its checkpoints, parents first.
      type: list
      elements: str
      returned: when O(name) is given
    current_checkpoint:
      description: With O(name), the checkpoint it was last taken or reverted to, or null.
      type: str
      returned: when O(name) is given
  sample: [{"name": "web1", "state": "running", "reason": "booted", "vcpus": 1, "memory": 536870912,
            "max_memory": 1073741824, "uuid": "5b1f...", "host": "qemu:///system"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtkit.kvm.plugins.module_utils.common import host_options, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={**host_options(), "name": {"type": "str"}},
        supports_check_mode=True,
    )
    run(module, "vm_info")


if __name__ == "__main__":
    main()
