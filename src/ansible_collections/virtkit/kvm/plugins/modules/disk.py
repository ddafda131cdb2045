#!/usr/bin/python
# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.disk: a disk hot-plugged into a VM, or out of it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: disk
short_description: A disk attached to a KVM/QEMU VM while it runs (hot-plug), or detached
description:
  - V(present) attaches the disk at O(path) to VM O(vm). A running VM gets it at once (virtio-blk, or on a
    virtio-scsi controller that is added when missing) and its definition too. A stopped VM's definition changes.
  - A missing file is made first, O(size) bytes of O(format). If the attach fails, the image made for it is removed
    and the definition is left as it was.
  - V(absent) asks the guest to release the disk, waits up to O(timeout) seconds, then removes it from the
    definition. The image is kept unless O(remove_image).
  - A disk already attached, or already gone, changes nothing.
author:
  - virtkit developers (@virtkit)
extends_documentation_fragment:
  - virtkit.kvm.host
options:
  vm:
    description: The VM's name.
    type: str
    required: true
  path:
    description: The image file (or, with O(kind=block), the host's block device). It must lie in O(storage_roots).
    type: path
    required: true
  state:
    description: Whether the disk should be attached.
    type: str
    choices: [present, absent]
    default: present
  size:
    description: The size of a new image, in bytes or with a unit (C(4GiB)). Needed when the file does not exist.
    type: str
  format:
    description: The image's format (V(vhd) is QEMU's vpc). A running VM cannot take a V(vhdx) image.
    type: str
    choices: [qcow2, raw, vhd, vhdx]
  bus:
    description: The bus the guest sees the disk on. Only V(virtio) and V(scsi) can be hot-plugged.
    type: str
    choices: [virtio, scsi, sata, ide]
  kind:
    description: V(file) for an image, V(block) to pass a host block device through.
    type: str
    choices: [file, block]
  target:
    description: The guest's device name (C(vdb), C(sdb)); the next free one by default.
    type: str
  readonly:
    description: Attach the disk read-only.
    type: bool
  cache:
    description: The host's cache mode for the disk.
    type: str
    choices: [default, none, writethrough, writeback, directsync, unsafe]
  controller:
    description: On the V(scsi) bus, the controller's number (Hyper-V's ControllerNumber).
    type: int
  unit:
    description: On the V(scsi) bus, the unit on the controller (Hyper-V's ControllerLocation).
    type: int
  timeout:
    description: With O(state=absent), seconds to wait for the guest to release the disk.
    type: float
    default: 10.0
  remove_image:
    description: With O(state=absent), delete the image file after the disk is detached.
    type: bool
    default: false
attributes:
  check_mode:
    description: Checks as a real run would (path, format, free address) and reports what would change.
    support: full
  diff_mode:
    description: The disk before and after.
    support: full
  platform:
    description: Runs where the Python with virtkit can reach the host's libvirt.
    support: full
    platforms: posix
seealso:
  - module: virtkit.kvm.vm
  - module: virtkit.kvm.image
"""

EXAMPLES = r"""
- name: A new 1 GiB disk, hot-plugged into the running VM
  virtkit.kvm.disk:
    uri: qemu:///system
    vm: web1
    path: /var/lib/virtkit/web1-data.qcow2
    size: 1GiB

- name: On the SCSI controller, as Hyper-V would put it
  virtkit.kvm.disk:
    uri: qemu:///system
    vm: web1
    path: /var/lib/virtkit/web1-logs.qcow2
    size: 512MiB
    bus: scsi
    controller: 0
    unit: 1

- name: Out again, image deleted
  virtkit.kvm.disk:
    uri: qemu:///system
    vm: web1
    path: /var/lib/virtkit/web1-data.qcow2
    state: absent
    remove_image: true
"""

RETURN = r"""
disk:
  description: The disk afterwards, or null once it is detached.
  returned: always
  type: dict
  contains:
    path:
      description: Its image file.
      type: str
    format:
      description: Its format.
      type: str
    bus:
      description: Its bus.
      type: str
    target:
      description: The guest's device name.
      type: str
    live:
      description: Whether the running VM has it.
      type: bool
    persistent:
      description: Whether the VM's definition has it.
      type: bool
disks:
  description: Every disk of the VM afterwards, as RV(disk).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtkit.kvm.plugins.module_utils.common import host_options, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **host_options(),
            "vm": {"type": "str", "required": True},
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "size": {"type": "str"},
            "format": {"type": "str", "choices": ["qcow2", "raw", "vhd", "vhdx"]},
            "bus": {"type": "str", "choices": ["virtio", "scsi", "sata", "ide"]},
            "kind": {"type": "str", "choices": ["file", "block"]},
            "target": {"type": "str"},
            "readonly": {"type": "bool"},
            "cache": {
                "type": "str",
                "choices": ["default", "none", "writethrough", "writeback", "directsync", "unsafe"],
            },
            "controller": {"type": "int"},
            "unit": {"type": "int"},
            "timeout": {"type": "float", "default": 10.0},
            "remove_image": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    run(module, "disk")


if __name__ == "__main__":
    main()
