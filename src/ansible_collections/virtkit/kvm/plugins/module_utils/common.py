# Copyright: virtkit developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""What the virtkit.kvm modules share: the host options and one way to run a task and report it.

Each module only declares its options; the work is done by the virtkit SDK's task of the same name, which is also
what ``virtkit apply`` runs. virtkit must be installed in the Python that runs the module.
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from virtkit.errors import InvalidSpec, VirtkitError
    from virtkit.playbook.tasks import run_task
except ImportError:
    HAS_VIRTKIT = False
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_VIRTKIT = True
    IMPORT_ERROR = None

#: How to reach a host's files over SSH (virtkit.SSHConfig); host keys are always checked.
SSH_OPTIONS = {
    "host": {"type": "str", "required": True},
    "key_file": {"type": "path", "required": True},
    "known_hosts": {"type": "path", "required": True},
    "port": {"type": "int", "default": 22},
    "user": {"type": "str", "default": "root"},
    "connect_timeout": {"type": "float", "default": 10.0},
}


def host_options(*, required: bool = True) -> dict[str, dict[str, object]]:
    """The options that name a host: ``uri``, ``ssh`` and ``storage_roots``."""
    return {
        "uri": {"type": "str", "required": required},
        "ssh": {"type": "dict", "options": SSH_OPTIONS},
        "storage_roots": {"type": "list", "elements": "path"},
    }


def run(module: AnsibleModule, task: str) -> None:
    """Run virtkit's ``task`` with the module's parameters, in its check and diff mode, and exit with its result.

    A bad option fails naming it (``field``), with nothing changed; any other virtkit error fails with its message
    and its kind (``error``).
    """
    if not HAS_VIRTKIT:
        module.fail_json(msg=missing_required_lib("virtkit"), exception=IMPORT_ERROR)
    try:
        result = run_task(task, dict(module.params), check=module.check_mode, diff=module._diff)
    except InvalidSpec as exc:
        module.fail_json(msg=str(exc), field=exc.field, error=type(exc).__name__)
    except VirtkitError as exc:
        module.fail_json(msg=str(exc), error=type(exc).__name__)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)
