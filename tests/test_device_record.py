"""``record["device"]`` names the CPU model, not only the architecture."""
import platform
from pathlib import Path

import pytest

from graphkit.utils import cpu_model, device_description


def test_cpu_model_reads_the_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: avx2\n")
    assert cpu_model(str(info)) == f"AMD EPYC 7B13, {platform.machine()}"
    assert cpu_model(str(tmp_path / "missing")) == (platform.processor() or platform.machine())


def test_cpu_device_description_carries_this_machines_model():
    # platform.processor() says only "x86_64" on Linux: sessions on two different CPUs recorded
    # the same device string, and their timings looked comparable.
    path = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
             if line.split(":", 1)[0].strip() == "model name"] if path.exists() else []
    if not names:
        pytest.skip("no 'model name' in /proc/cpuinfo on this machine")
    assert names[0] in device_description("cpu")
