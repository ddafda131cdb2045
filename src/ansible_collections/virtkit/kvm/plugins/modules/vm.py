#!/usr/bin/python
# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""virtkit.kvm.vm: a VM brought to a spec and a state on one host."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vm
short_description: A KVM/QEMU VM brought to a declared spec and state, changed in place while it runs
description:
  - Brings the VM O(name) on the host of O(uri) to O(spec) (virtkit's neutral VM spec) or O(hyperv) (the same VM
    in Hyper-V's words), to O(state), with the checkpoints of O(checkpoints), reverted to O(revert_to).
  - This is the engine of C(virtkit apply) on one host and one VM. A running VM is changed without being recreated
    where that is possible. A disk added to or removed from the spec is hot-plugged. Memory and vCPUs within their
    maxima change live.
  - Any other change to a running VM needs it off. It is reported in RV(held) and a warning, and made only with
    O(allow_restart), which shuts the VM down, changes it and brings it back to its state.
  - What virtkit does not model in an existing VM is kept. A second run with the same options changes nothing.
author:
  - virtkit developers (@virtkit)
extends_documentation_fragment:
  - virtkit.kvm.host
options:
  name:
    description: The VM's name (1-63 letters, digits, C(_), C(.), C(-)).
    type: str
    required: true
  spec:
    description:
      - The VM as virtkit's neutral spec, the fields C(virtkit vm create) reads, for example C(vcpus),
        C(max_vcpus), C(memory), C(max_memory), C(firmware), C(disks), C(nics), C(snapshot_mode).
      - Its C(name) may be left out. Give O(spec) or O(hyperv), not both.
      - Left out, the VM keeps the spec it has and only its state, checkpoints and revert change. A VM that does not
        exist yet needs one.
    type: dict
  hyperv:
    description:
      - The VM as a Hyper-V spec (C(Generation), C(MemoryStartupBytes), C(ProcessorCount), C(HardDrives) ...), the
        fields C(virtkit hyperv schema) prints. Errors name its fields in Hyper-V's words.
    type: dict
  state:
    description: The state the VM should be in. V(absent) deletes it, with its disk images unless O(keep_disks).
    type: str
    choices: [running, stopped, paused, saved, absent]
    default: running
  checkpoints:
    description:
      - Names of checkpoints that must exist. Missing ones are taken in order, of the kind the VM's
        C(snapshot_mode) says. Checkpoints that exist and are not listed are kept.
    type: list
    elements: str
    default: []
  revert_to:
    description:
      - A checkpoint the VM is reverted to when it is not its current one, after its checkpoints are taken.
      - Reverting makes it current, so the next run does not revert again.
    type: str
  allow_restart:
    description: Make the changes that need the VM off (shut down, change, bring back to its state).
    type: bool
    default: false
  shutdown_timeout:
    description: Seconds the guest has to power off when asked before it is powered off hard.
    type: float
    default: 60.0
  keep_disks:
    description: With O(state=absent), keep the VM's disk images.
    type: bool
    default: false
attributes:
  check_mode:
    description: Plans the steps and reports them in RV(plan) and C(changed), with the same checks as a real run.
    support: full
  diff_mode:
    description: The VM's host, state and spec before and after.
    support: full
  platform:
    description: Runs where the Python with virtkit can reach the host's libvirt.
    support: full
    platforms: posix
seealso:
  - module: virtkit.kvm.vm_info
  - module: virtkit.kvm.disk
  - module: virtkit.kvm.snapshot
"""

EXAMPLES = r"""
- name: A VM with a disk, running on h1
  virtkit.kvm.vm:
    uri: qemu:///system
    name: web1
    spec:
      vcpus: 1
      max_vcpus: 2
      memory: 512MiB
      max_memory: 1GiB
      disks:
        - {path: /var/lib/virtkit/web1.qcow2, size: 4GiB}
    checkpoints: [installed]

- name: A Generation 2 VM from Hyper-V's words, off
  virtkit.kvm.vm:
    uri: qemu:///system
    name: db1
    state: stopped
    hyperv:
      Generation: 2
      MemoryStartupBytes: 1GB
      ProcessorCount: 2

- name: Stopped, its spec as it is
  virtkit.kvm.vm:
    uri: qemu:///system
    name: web1
    state: stopped

- name: Gone, with its disks
  virtkit.kvm.vm:
    uri: qemu:///system
    name: old1
    state: absent
"""

RETURN = r"""
plan:
  description: "The steps planned, one line each: C(+ define web1 on h1 ...), C(~ web1: start on h1)."
  returned: always
  type: list
  elements: str
  sample: ["+ define web1 on localhost (1 vCPU, 512MiB, 1 disk)", "~ web1: start on localhost"]
steps:
  description: Each planned step with what became of it (empty in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: What the step does (define, update, attach, detach, start, stop, migrate, checkpoint, revert ...).
      type: str
    text:
      description: The step as one line.
      type: str
    status:
      description: V(done), V(failed), V(not-run) (a step before it failed) or V(held) (it needs the VM off).
      type: str
    error:
      description: Why the step failed.
      type: str
    seconds:
      description: How long the step took.
      type: float
held:
  description: The steps not made because they need the VM off (see O(allow_restart)).
  returned: always
  type: list
  elements: str
  sample: ["~ web1: update on localhost (firmware; needs the VM off)"]
vm:
  description: The VM as the host lists it afterwards, or null once it is absent.
  returned: always
  type: dict
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.virtkit.kvm.plugins.module_utils.common import host_options, run


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **host_options(),
            "name": {"type": "str", "required": True},
            "spec": {"type": "dict"},
            "hyperv": {"type": "dict"},
            "state": {
                "type": "str",
                "choices": ["running", "stopped", "paused", "saved", "absent"],
                "default": "running",
            },
            "checkpoints": {"type": "list", "elements": "str", "default": []},
            "revert_to": {"type": "str"},
            "allow_restart": {"type": "bool", "default": False},
            "shutdown_timeout": {"type": "float", "default": 60.0},
            "keep_disks": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("spec", "hyperv")],
        supports_check_mode=True,
    )
    run(module, "vm")


if __name__ == "__main__":
    main()
