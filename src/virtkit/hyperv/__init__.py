"""Hyper-V's vocabulary on KVM: specs in Hyper-V's words and cmdlet-shaped calls.

A Hyper-V administrator writes what they know, and virtkit runs it through its neutral API::

    from virtkit import connect, hyperv

    with connect("qemu:///system") as host:
        hyperv.new_vm(host, {"Name": "web1", "Generation": 2, "MemoryStartupBytes": "2GB",
                             "HardDrives": [{"Path": "/var/lib/virtkit/web1.vhdx"}]})
        hyperv.start_vm(host, "web1")
        hyperv.add_vm_hard_disk_drive(host, "web1", "/var/lib/virtkit/data.vhdx")
        hyperv.get_vm(host, "web1").state          # HyperVState.RUNNING

Every call is named after its cmdlet in snake_case, with the cmdlet's parameter names, returns what the neutral
call returns, and takes ``what_if`` (check mode). :mod:`virtkit.hyperv.spec` says how Generation 1 and 2, Secure
Boot, VHD/VHDX and pass-through disks map onto KVM; :mod:`virtkit.hyperv.vocabulary` has the name tables.
"""

from __future__ import annotations

from virtkit.hyperv.checkpoints import (
    VMSnapshot,
    checkpoint_vm,
    get_vm_snapshot,
    remove_vm_snapshot,
    rename_vm_snapshot,
    restore_vm_snapshot,
)
from virtkit.hyperv.drives import (
    add_vm_hard_disk_drive,
    add_vm_scsi_controller,
    get_vm_hard_disk_drive,
    remove_vm_hard_disk_drive,
)
from virtkit.hyperv.export import export_vm
from virtkit.hyperv.integration import (
    VMIntegrationService,
    copy_vm_file,
    disable_vm_integration_service,
    enable_vm_integration_service,
    get_vm_integration_service,
    get_vm_kvp,
)
from virtkit.hyperv.lifecycle import (
    RestartType,
    get_vm,
    new_vm,
    remove_vm,
    restart_vm,
    resume_vm,
    save_vm,
    set_vm,
    set_vm_firmware,
    start_vm,
    stop_vm,
    suspend_vm,
)
from virtkit.hyperv.moves import VMProcessor, get_vm_processor, move_vm, set_vm_processor
from virtkit.hyperv.results import VirtualMachine, VMHardDiskDrive
from virtkit.hyperv.spec import HardDrive, HyperVSpec, IntegrationServices, NetworkAdapter
from virtkit.hyperv.vhd import (
    VhdFormat,
    VhdType,
    VirtualHardDisk,
    convert_vhd,
    get_vhd,
    merge_vhd,
    new_vhd,
    optimize_vhd,
    resize_vhd,
)
from virtkit.hyperv.vocabulary import (
    AutomaticStopAction,
    CheckpointType,
    ControllerType,
    HyperVState,
    SecureBootTemplate,
)

__all__ = [
    "AutomaticStopAction",
    "CheckpointType",
    "ControllerType",
    "HardDrive",
    "HyperVSpec",
    "HyperVState",
    "IntegrationServices",
    "NetworkAdapter",
    "RestartType",
    "SecureBootTemplate",
    "VMHardDiskDrive",
    "VMIntegrationService",
    "VMProcessor",
    "VMSnapshot",
    "VhdFormat",
    "VhdType",
    "VirtualHardDisk",
    "VirtualMachine",
    "add_vm_hard_disk_drive",
    "add_vm_scsi_controller",
    "checkpoint_vm",
    "convert_vhd",
    "copy_vm_file",
    "disable_vm_integration_service",
    "enable_vm_integration_service",
    "export_vm",
    "get_vhd",
    "get_vm",
    "get_vm_hard_disk_drive",
    "get_vm_integration_service",
    "get_vm_kvp",
    "get_vm_processor",
    "get_vm_snapshot",
    "merge_vhd",
    "move_vm",
    "new_vhd",
    "new_vm",
    "optimize_vhd",
    "remove_vm",
    "remove_vm_hard_disk_drive",
    "remove_vm_snapshot",
    "rename_vm_snapshot",
    "resize_vhd",
    "restart_vm",
    "restore_vm_snapshot",
    "resume_vm",
    "save_vm",
    "set_vm",
    "set_vm_firmware",
    "set_vm_processor",
    "start_vm",
    "stop_vm",
    "suspend_vm",
]
