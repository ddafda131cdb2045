"""CPU compatibility on the real lab hosts: the baseline of their CPUs, a check that names what a host lacks, and
a VM with the baseline CPU defined, booted and checked against the other host.

Both lab hosts are this machine, so their baseline is their host-model CPU. Guests here run under TCG
(docs/platform.md), so the hypervisor's CPU is QEMU's TCG CPU; the KVM baseline is computed and defined too (not
started).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import helpers
import virtkit
from virtkit import Accel, CPUModel, Unsupported
from virtkit.lab import image


def _host_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_the_baseline_of_two_identical_hosts_is_their_host_model(hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    own = [h.cpu() for h in hosts]
    assert own[0] == own[1]
    start = time.monotonic()
    baseline = virtkit.cpu_baseline(hosts)
    took = time.monotonic() - start
    print(f"\ncpu_baseline of 2 hosts (2 domcapabilities, 1 baseline, 2 compares): {took * 1000:.0f} ms")
    assert baseline.model == own[0].model and set(baseline.features) == set(own[0].features)
    assert baseline.vendor == own[0].vendor
    assert all(h.can_run_cpu(baseline) for h in hosts)


@pytest.mark.parametrize(
    ("model", "lacking"),
    [("Icelake-Server", "avx512f"), ("EPYC-Milan", None)],
)
def test_a_model_the_host_cannot_run_is_refused_naming_the_features(
    hosts: tuple[virtkit.Host, virtkit.Host], model: str, lacking: str | None
) -> None:
    if lacking is not None and lacking in _host_flags():
        pytest.skip(f"this machine's CPU has {lacking}")
    host = hosts[0]
    assert not host.can_run_cpu(CPUModel(model))
    with pytest.raises(Unsupported, match="does not provide required features") as err:
        host.check_cpu(virtkit.VMSpec(name="icy", cpu_model=model))
    assert model in str(err.value)
    if lacking is not None:
        assert lacking in str(err.value)


def test_a_feature_the_host_lacks_is_named(hosts: tuple[virtkit.Host, virtkit.Host]) -> None:
    if "avx512f" in _host_flags():
        pytest.skip("this machine's CPU has avx512f")
    baseline = virtkit.cpu_baseline(hosts)
    greedy = CPUModel(baseline.model, (*baseline.features, "+avx512f"))
    with pytest.raises(Unsupported, match="avx512f"):
        hosts[1].check_cpu(greedy)
    assert hosts[1].can_run_cpu(CPUModel("qemu64"))


def test_a_vm_with_the_baseline_cpu_defines_boots_and_may_move(
    hosts: tuple[virtkit.Host, virtkit.Host], guest: image.GuestImage, own: helpers.Owned
) -> None:
    name = own("cpu1")
    baseline = virtkit.cpu_baseline(hosts)
    spec = baseline.apply(helpers.spec(guest, name, disk_size="64MiB", alive=None))
    change = hosts[0].create(spec, start=True)
    assert change.after is not None and change.after.state is virtkit.VMState.RUNNING
    helpers.serial_log(name).wait_for_boot(timeout=120)
    vm = hosts[0].get(name)
    stored = vm.spec()
    assert (stored.cpu_model, stored.cpu_features) == (baseline.model, baseline.features)
    assert not hosts[0].create(spec, start=True).changed  # what libvirt stored reads back as the same spec
    hosts[1].check_cpu(vm)  # the check made before migrating there


def test_the_kvm_baseline_defines_on_the_real_daemon(
    hosts: tuple[virtkit.Host, virtkit.Host], own: helpers.Owned
) -> None:
    name = own("cpukvm")
    baseline = virtkit.cpu_baseline(hosts, accel=Accel.KVM)
    assert baseline != virtkit.cpu_baseline(hosts, accel=Accel.TCG)  # KVM offers another CPU than TCG's
    spec = baseline.apply(virtkit.VMSpec(name=name, memory=128 * 2**20, accel=Accel.KVM))
    hosts[0].create(spec)  # defined, not started: this machine's /dev/kvm cannot run a stock guest (docs/platform.md)
    stored = hosts[0].get(name).spec()
    assert stored.accel is Accel.KVM and stored.cpu_model == baseline.model
    assert stored.cpu_features == baseline.features
