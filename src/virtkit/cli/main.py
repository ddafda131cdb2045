"""The ``virtkit`` command line."""

from __future__ import annotations

import click


@click.group()
def cli() -> None:
    """Automate KVM/QEMU virtual machines through libvirt."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
