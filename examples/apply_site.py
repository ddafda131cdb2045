"""Apply a site file with virtkit's declarative engine: observe the hosts, print the plan, apply it (each step as it
ends), then plan again to show that nothing is left to do. ``--remove`` then applies the same file with every VM
``absent``, removing what it made.

On the lab (`virtkit lab up`, `virtkit lab image`):

    .venv/bin/python examples/apply_site.py examples/specs/lab-site.yml --remove
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from virtkit.playbook import DesiredState, Engine, SiteSpec, StepResult, render, render_results
from virtkit.playbook.report import render_step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="the site file (YAML)")
    parser.add_argument("--check", action="store_true", help="print the plan only")
    parser.add_argument("--allow-restart", action="store_true", help="make changes that need a VM off")
    parser.add_argument("--remove", action="store_true", help="afterwards, remove every VM of the site")
    args = parser.parse_args()

    site = SiteSpec.from_file(args.site)
    with Engine(site) as engine:
        steps = engine.plan()
        print(render(steps), end="")
        if args.check:
            return 0

        def ended(r: StepResult) -> None:
            print(f"  {render_step(r.step)}: {r.status.value} {r.error}")

        results = engine.apply(steps, allow_restart=args.allow_restart, on_step=ended)
        print(render_results(results), end="")
        print("planned again:", render(engine.plan()), end="")
    if args.remove:
        gone = dataclasses.replace(
            site, vms=tuple(dataclasses.replace(vm, state=DesiredState.ABSENT) for vm in site.vms)
        )
        with Engine(gone) as engine:
            print(render_results(engine.apply(engine.plan())), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
