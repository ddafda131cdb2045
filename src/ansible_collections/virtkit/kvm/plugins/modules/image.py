#!/usr/bin/python
# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.image: a disk image made, grown, converted or deleted."""

from __future__ import annotations

DOCUMENTATION = r"""
module: image
short_description: A disk image (qcow2, raw, VHD, VHDX) made, grown, converted from another, or deleted
description:
  - V(present) makes the image at O(path) when it is missing, either O(size) bytes of O(format) (on O(backing) when
    given, an overlay), or a copy of O(source) converted to O(format), Hyper-V's Convert-VHD (a backing chain is
    flattened). An image that exists is grown to O(size) when it is smaller. It is never shrunk, and an image of
    another format is refused.
  - V(absent) deletes it. An image a running VM writes to is refused.
  - The image is made on the host of O(uri), with C(qemu-img) over SSH when O(ssh) is given, or on this machine
    when O(uri) is left out. Every path must lie in O(storage_roots).
  - A VHD is QEMU's C(vpc) format; a new VHD may come out slightly larger than O(size) (its geometry is rounded up).
author:
  - virtkit developers (@virtkit)
extends_documentation_fragment:
  - virtkit.kvm.host
options:
  uri:
    description:
      - The libvirt URI of the host the image is on. Left out, the image is on this machine and O(storage_roots)
        is required.
    type: str
    required: false
  path:
    description: The image file.
    type: path
    required: true
  state:
    description: Whether the image should exist.
    type: str
    choices: [present, absent]
    default: present
  format:
    description: Its format (V(vhd) is Hyper-V's VHD, V(vhdx) its VHDX). A new image is V(qcow2) by default.
    type: str
    choices: [qcow2, raw, vhd, vhdx]
  size:
    description: Its size, in bytes or with a unit (C(10GiB)). A new image needs it unless O(source) or O(backing).
    type: str
  source:
    description: An image to convert into a new image at O(path).
    type: path
  backing:
    description: The backing file of a new qcow2 overlay.
    type: path
  preallocation:
    description: How a new image's space is allocated (V(full) for a VHD or VHDX is Hyper-V's fixed-size disk).
    type: str
    choices: ["off", metadata, falloc, full]
  compress:
    description: Compress a conversion's clusters (qcow2 only).
    type: bool
    default: false
attributes:
  check_mode:
    description: Checks the path, the storage roots and the image there, and reports what would change.
    support: full
  diff_mode:
    description: The image's path, format and size before and after.
    support: full
  platform:
    description: Runs where C(qemu-img) runs, or reaches the host over SSH.
    support: full
    platforms: posix
seealso:
  - module: virtkit.kvm.disk
"""

EXAMPLES = r"""
- name: A 10 GiB dynamic VHDX
  virtkit.kvm.image:
    path: /var/lib/virtkit/data.vhdx
    format: vhdx
    size: 10GiB
    storage_roots: [/var/lib/virtkit]

- name: Convert-VHD to qcow2 so that a running VM can take it
  virtkit.kvm.image:
    path: /var/lib/virtkit/data.qcow2
    source: /var/lib/virtkit/data.vhdx
    format: qcow2
    storage_roots: [/var/lib/virtkit]

- name: Grown to 20 GiB
  virtkit.kvm.image:
    path: /var/lib/virtkit/data.qcow2
    size: 20GiB
    storage_roots: [/var/lib/virtkit]
"""

RETURN = r"""
image:
  description:
    - What C(qemu-img info) says of the image afterwards.
    - Null once absent, or in check mode when it would be made.
  returned: always
  type: dict
  contains:
    path:
      description: The image file.
      type: str
    format:
      description: Its format.
      type: str
    virtual_size:
      description: The size the guest sees, in bytes.
      type: int
    actual_size:
      description: The space it takes on disk, in bytes.
      type: int
    backing_file:
      description: Its backing file, or null.
      type: str
progress:
  description: A conversion's percentages as it ran.
  returned: always
  type: list
  elements: float
  sample: [0.0, 10.2, 20.5, 100.0]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtkit.kvm.plugins.module_utils.common import host_options, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **host_options(required=False),
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "format": {"type": "str", "choices": ["qcow2", "raw", "vhd", "vhdx"]},
            "size": {"type": "str"},
            "source": {"type": "path"},
            "backing": {"type": "path"},
            "preallocation": {"type": "str", "choices": ["off", "metadata", "falloc", "full"]},
            "compress": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("source", "backing")],
        supports_check_mode=True,
    )
    run(module, "image")


if __name__ == "__main__":
    main()
