# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The options every virtkit.kvm module takes to name its host."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  uri:
    description:
      - The libvirt URI of the host, for example C(qemu:///system) or C(qemu+ssh://root@h1/system).
    type: str
    required: true
  ssh:
    description:
      - How to reach the host's files over SSH, for a host that is not this machine. Disk images are then made and
        checked on the host itself. Host keys are always checked against O(ssh.known_hosts).
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
    description:
      - Directories on the host where VM disks and images may live. Every path is resolved (symbolic links too) and
        refused when it lies outside them.
      - By default C(/var/lib/libvirt/images) and C(/var/lib/virtkit).
    type: list
    elements: path
requirements:
  - virtkit (the Python SDK) in the Python that runs the module, with libvirt-python
"""
