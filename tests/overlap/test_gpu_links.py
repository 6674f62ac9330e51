"""Each GPU's links come from its gpu_specs.toml entry; only GPUs that table lacks keep a pattern.

The figures (GB/s per direction) are the interconnects.toml rows; the test checks which row a GPU
resolves to, and that no GPU is named in both files.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources

import pytest

from infersight.hardware.gpu_specs import list_gpus, lookup_gpu
from infersight.hardware.links import device_links, gpu_links, spec_links
from infersight.model.trace import GpuInfo


def _interconnects() -> dict:
    text = (resources.files("infersight") / "data" / "interconnects.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_every_named_link_exists_and_is_sourced() -> None:
    links = _interconnects()["link"]
    for spec in list_gpus():
        for link_id in (spec.host_link, spec.peer_link):
            assert link_id is None or link_id in links, f"{spec.key}: no [link.{link_id}]"
        if spec.host_link or spec.peer_link:
            assert spec.sources.get("links"), f"{spec.key}: links without a source"


def test_an_unlisted_pattern_names_no_listed_gpu() -> None:
    """A GPU is named once: no [[unlisted_gpu]] pattern matches a gpu_specs.toml entry's name."""
    rows = _interconnects()["unlisted_gpu"]
    clashes = [
        (row["match"], spec.key)
        for row in rows
        for spec in list_gpus()
        if re.search(row["match"], spec.name, re.IGNORECASE)
    ]
    assert not clashes
    assert "gpu" not in _interconnects()  # the old per-GPU regex table is gone


@pytest.mark.parametrize(
    ("name", "host", "peer"),
    [
        ("h100-nvl", "pcie5_x16", "nvlink4_bridge"),  # a --gpu alias resolves like the trace name
        ("NVIDIA H800", "pcie5_x16", "nvlink4_h800"),  # not in gpu_specs.toml: its pattern row
        ("NVIDIA A10G", "pcie4_x16", None),
        ("NVIDIA L40", "pcie4_x16", None),
        ("NVIDIA A100-SXM4-80GB MIG 3g.40gb", "pcie4_x16", "nvlink3_a100"),  # the whole GPU's links
    ],
)
def test_links_by_name(name: str, host: str, peer: str | None) -> None:
    links = gpu_links(name)
    assert links.host is not None and links.host.id == host
    assert (links.peer.id if links.peer else None) == peer


def test_a_shared_name_is_told_apart_by_the_device() -> None:
    """ "NVIDIA H100" is SXM, PCIe or NVL by name alone (links differ): not guessed, but the trace's
    SM count (114 on the PCIe board, 132 on the others) picks the PCIe board and its bridge."""
    assert gpu_links("NVIDIA H100").peer is None
    assert "links differ" in (gpu_links("NVIDIA H100").na_reason or "")
    pcie = GpuInfo(device=0, name="NVIDIA H100", sm_count=114, memory_bytes=85_520_809_984)
    links = device_links(pcie)
    assert links.peer is not None and links.peer.id == "nvlink4_bridge"
    assert links.peer.gb_per_s == _interconnects()["link"]["nvlink4_bridge"]["gb_per_s"]


def test_spec_links_are_the_entry_fields() -> None:
    spec = lookup_gpu("a100")
    links = spec_links(spec)
    assert (
        (links.host.id if links.host else None, links.peer.id if links.peer else None)
        == (
            spec.host_link,
            spec.peer_link,
        )
        == ("pcie4_x16", "nvlink3_a100")
    )
    assert spec_links(lookup_gpu("mi250")).na_reason  # no sourced link figure: unknown, not 0
