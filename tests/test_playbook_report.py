"""A plan rendered as a diff, and the exit code of terraform's -detailed-exitcode."""

from __future__ import annotations

from virtkit.playbook import Action, Plan, Step
from virtkit.playbook.report import exit_code, render

PLAN = Plan(
    (
        Step(Action.DELETE, "h1", "old1"),
        Step(Action.DEFINE, "h1", "web1", "2 vCPUs, 1GiB"),
        Step(Action.UPDATE, "h2", "web2", "memory 1GiB -> 2GiB (live)"),
        Step(Action.UPDATE, "h2", "web2", "machine pc -> q35 (needs the VM off)", needs_off=True),
        Step(Action.ATTACH, "h2", "web2", "disk /srv/d.qcow2 on virtio (hot-plug)"),
        Step(Action.MIGRATE, "h2", "web3", "h1 -> h2"),
        Step(Action.START, "h1", "web1"),
        Step(Action.STOP, "h1", "web4", "discard its saved memory"),
        Step(Action.CHECKPOINT, "h1", "web1", "installed"),
    )
)


def test_a_plan_reads_like_a_diff() -> None:
    assert render(PLAN).splitlines() == [
        "- delete old1 on h1",
        "+ define web1 on h1 (2 vCPUs, 1GiB)",
        "~ web2: memory 1GiB -> 2GiB (live)",
        "~ web2: machine pc -> q35 (needs the VM off)",
        "~ web2: attach disk /srv/d.qcow2 on virtio (hot-plug)",
        "~ web3: migrate h1 -> h2",
        "~ web1: start on h1",
        "~ web4: stop on h1 (discard its saved memory)",
        "+ web1: checkpoint installed",
        "Plan: 9 steps, 1 of them with the VM off.",
    ]


def test_an_empty_plan_says_no_changes() -> None:
    assert render(Plan()) == "No changes.\n"
    assert render(Plan((Step(Action.START, "h1", "a"),))).splitlines()[-1] == "Plan: 1 step."


def test_exit_codes_follow_terraform_detailed_exitcode() -> None:
    assert exit_code(Plan()) == 0
    assert exit_code(PLAN) == 2
    assert exit_code(PLAN, failed=True) == 1
    assert exit_code(Plan(), failed=True) == 1


def test_the_example_site_on_empty_hosts_renders_as_docs_playbook_shows() -> None:
    from pathlib import Path

    from virtkit.playbook import Observed, SiteSpec, plan

    site = SiteSpec.from_file(Path(__file__).parent.parent / "examples" / "specs" / "site.yml")
    text = render(plan(site, Observed({"h1": [], "h2": []})))
    assert text in (Path(__file__).parent.parent / "docs" / "playbook.md").read_text()
