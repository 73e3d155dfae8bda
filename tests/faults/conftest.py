"""The small disk of the fault tests: a tmpfs, which needs root; skipped with the reason where there is none."""
import os
import subprocess

import pytest


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (root only), unmounted afterwards (`tests.faults.fill` fills it)."""
    if os.geteuid() != 0:
        pytest.skip("a small disk is a tmpfs mount, which needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("mount -t tmpfs failed (no CAP_SYS_ADMIN here)")
    yield disk
    if subprocess.run(["umount", str(disk)]).returncode != 0:
        subprocess.run(["umount", "-l", str(disk)], check=True)  # a file still open on it: detach it lazily

