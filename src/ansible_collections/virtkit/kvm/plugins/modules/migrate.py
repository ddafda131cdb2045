#!/usr/bin/python
# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.migrate: a VM moved to another host."""

from __future__ import annotations

DOCUMENTATION = r"""
module: migrate
short_description: A KVM/QEMU VM moved to another host, live, with its storage, quick or offline
description:
  - Moves VM O(name) from the host of O(uri) to the host of O(dest). Its definition and its checkpoints go with it.
  - V(live) keeps the guest running while its memory is copied, its disks on O(shared_storage). V(live-storage)
    copies its disks too. V(quick) saves it and restores it on O(dest) (Hyper-V's Quick Migration). A VM that is
    off moves V(offline).
  - A busy guest's migration is made to end (a rising downtime allowance, then post-copy where the host supports
    it). If it fails, the VM runs where it was, on exactly one host.
  - A VM already on O(dest) and gone from the source changes nothing.
  - A VM that another process (another playbook) is migrating is refused, as the hypervisor reports its job.
author:
  - virtkit developers (@virtkit)
extends_documentation_fragment:
  - virtkit.kvm.host
options:
  name:
    description: The VM's name.
    type: str
    required: true
  dest:
    description: The host to move it to.
    type: dict
    required: true
    suboptions:
      uri:
        description: The destination's libvirt URI.
        type: str
        required: true
      ssh:
        description: How to reach the destination's files over SSH (as O(ssh)).
        type: dict
        suboptions:
          host:
            description: Host name or address of the SSH server.
            type: str
            required: true
          key_file:
            description: The private key to log in with.
            type: path
            required: true
          known_hosts:
            description: The known_hosts file that holds the server's host key.
            type: path
            required: true
          port:
            description: TCP port of the SSH server.
            type: int
            default: 22
          user:
            description: User to log in as.
            type: str
            default: root
          connect_timeout:
            description: Seconds to wait for the SSH connection.
            type: float
            default: 10.0
      storage_roots:
        description: Directories on the destination where VM disks may live.
        type: list
        elements: path
  mode:
    description: How the VM moves.
    type: str
    choices: [live, live-storage, quick, offline]
    default: live
  shared_storage:
    description: Directories both hosts see at the same path (where the VM's disks are, for V(live)).
    type: list
    elements: path
    default: []
  storage:
    description: A directory on the destination for the copied disks (V(live-storage), V(offline)).
    type: path
  tuning:
    description:
      - How a live migration runs and what makes a busy guest's migration end (virtkit's MigrationTuning), for
        example C(bandwidth) (MiB/s), C(strategy) (C(auto), C(precopy), C(postcopy)), C(max_downtime),
        C(completion_timeout).
    type: dict
attributes:
  check_mode:
    description: Checks both hosts as a real move would (CPU, storage, names) and reports the plan.
    support: full
  diff_mode:
    description: The VM's host before and after.
    support: full
  platform:
    description: Runs where the Python with virtkit can reach both hosts' libvirt.
    support: full
    platforms: posix
seealso:
  - module: virtkit.kvm.vm
"""

EXAMPLES = r"""
- name: Live, disks on shared storage
  virtkit.kvm.migrate:
    uri: qemu+ssh://root@h1/system
    name: web1
    dest:
      uri: qemu+ssh://root@h2/system
    shared_storage: [/var/lib/virtkit/shared]
  register: moved

- name: How it went
  ansible.builtin.debug:
    msg: "{{ moved.migration.total_time }} s, downtime {{ moved.migration.downtime }} s"

- name: Quick Migration (save and restore), capped at 100 MiB/s
  virtkit.kvm.migrate:
    uri: qemu+ssh://root@h2/system
    name: web1
    dest: {uri: qemu+ssh://root@h1/system}
    mode: quick
    shared_storage: [/var/lib/virtkit/shared]
    tuning: {bandwidth: 100}
"""

RETURN = r"""
migration:
  description: How the move went (null when the VM was already on the destination).
  returned: always
  type: dict
  contains:
    mode:
      description: The mode used.
      type: str
    strategy:
      description: precopy or postcopy.
      type: str
    total_time:
      description: Seconds the move took.
      type: float
    downtime:
      description: Seconds the guest was paused, where the hypervisor reports it.
      type: float
    data_moved:
      description: Bytes sent.
      type: int
    escalated:
      description: What was done to make a busy guest's migration end.
      type: list
      elements: dict
progress:
  description: Samples of the move while it ran, at each new phase and each further tenth of the data.
  returned: always
  type: list
  elements: dict
  contains:
    phase:
      description: precopy, postcopy, stopped, completing, saving, restoring, copying, done.
      type: str
    fraction:
      description: The share of the data sent, from 0 to 1 (null before the total is known).
      type: float
    elapsed:
      description: Seconds since the move started.
      type: float
    remaining:
      description: Bytes left to send.
      type: int
host:
  description: The destination's libvirt URI.
  returned: always
  type: str
  sample: qemu+ssh://root@h2/system
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtkit.kvm.plugins.module_utils.common import SSH_OPTIONS, host_options, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **host_options(),
            "name": {"type": "str", "required": True},
            "dest": {
                "type": "dict",
                "required": True,
                "options": {
                    "uri": {"type": "str", "required": True},
                    "ssh": {"type": "dict", "options": SSH_OPTIONS},
                    "storage_roots": {"type": "list", "elements": "path"},
                },
            },
            "mode": {"type": "str", "choices": ["live", "live-storage", "quick", "offline"], "default": "live"},
            "shared_storage": {"type": "list", "elements": "path", "default": []},
            "storage": {"type": "path"},
            "tuning": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    run(module, "migrate")


if __name__ == "__main__":
    main()
