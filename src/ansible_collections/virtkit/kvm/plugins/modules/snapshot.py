#!/usr/bin/python
# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.snapshot: a VM's checkpoint taken, deleted or reverted to."""

from __future__ import annotations

DOCUMENTATION = r"""
module: snapshot
short_description: A KVM/QEMU VM's checkpoint (snapshot) taken, deleted or reverted to
description:
  - V(present) takes checkpoint O(name) of VM O(vm) when it does not exist. Of a VM that runs it holds its memory
    (a Standard checkpoint), or its disks with the file systems frozen by the guest agent (V(quiesced), a
    Production checkpoint). Of a VM that is off it holds its disks.
  - V(absent) deletes the checkpoint. Its children move up to its parent unless O(children) deletes them too.
    The VM's present state is kept.
  - V(reverted) brings the VM back to the checkpoint, unless it is already the VM's current checkpoint (the one
    last taken or reverted to) and O(force) is not set. A checkpoint without memory leaves the VM off, as applying
    a Production checkpoint does on Hyper-V.
author:
  - virtkit developers (@virtkit)
extends_documentation_fragment:
  - virtkit.kvm.host
options:
  vm:
    description: The VM's name.
    type: str
    required: true
  name:
    description: The checkpoint's name.
    type: str
    required: true
  state:
    description: What should become of the checkpoint.
    type: str
    choices: [present, absent, reverted]
    default: present
  kind:
    description:
      - What a new checkpoint holds. By default what the VM's C(snapshot_mode) says (Hyper-V's CheckpointType).
      - V(quiesced) falls back to V(memory) when the guest agent does not answer.
    type: str
    choices: [memory, disk-only, quiesced]
  description:
    description: A note kept with a new checkpoint.
    type: str
    default: ""
  children:
    description: With O(state=absent), delete the checkpoint's descendants too.
    type: bool
    default: false
  force:
    description: With O(state=reverted), revert even when the checkpoint is the VM's current one.
    type: bool
    default: false
attributes:
  check_mode:
    description: Checks as a real run would and reports what would change.
    support: full
  diff_mode:
    description: The checkpoint (or, for a revert, the VM's state) before and after.
    support: full
  platform:
    description: Runs where the Python with virtkit can reach the host's libvirt.
    support: full
    platforms: posix
seealso:
  - module: virtkit.kvm.vm
"""

EXAMPLES = r"""
- name: A checkpoint before the upgrade
  virtkit.kvm.snapshot:
    uri: qemu:///system
    vm: web1
    name: before-upgrade

- name: Back to it
  virtkit.kvm.snapshot:
    uri: qemu:///system
    vm: web1
    name: before-upgrade
    state: reverted

- name: No longer needed
  virtkit.kvm.snapshot:
    uri: qemu:///system
    vm: web1
    name: before-upgrade
    state: absent
"""

RETURN = r"""
snapshot:
  description: The checkpoint afterwards, or null once it is absent.
  returned: always
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    kind:
      description: What it holds (memory, disk-only, quiesced).
      type: str
    parent:
      description: The checkpoint it was taken on top of.
      type: str
    current:
      description: Whether it is the VM's current checkpoint.
      type: bool
    vm_state:
      description: The VM's state when it was taken.
      type: str
    created:
      description: When it was taken (seconds since the epoch).
      type: int
snapshots:
  description: The names of the VM's checkpoints, parents first.
  returned: always
  type: list
  elements: str
  sample: [installed, before-upgrade]
vm_state:
  description: The VM's state after the revert (predicted in check mode).
  returned: when O(state=reverted)
  type: str
  sample: running
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtkit.kvm.plugins.module_utils.common import host_options, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **host_options(),
            "vm": {"type": "str", "required": True},
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent", "reverted"], "default": "present"},
            "kind": {"type": "str", "choices": ["memory", "disk-only", "quiesced"]},
            "description": {"type": "str", "default": ""},
            "children": {"type": "bool", "default": False},
            "force": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run(module, "snapshot")


if __name__ == "__main__":
    main()
