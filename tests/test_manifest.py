"""The npe2 manifest: valid, discoverable, and every contribution names a real object."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import npe2
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "napari_dip_deblur"


@pytest.fixture(scope="module")
def manifest() -> npe2.PluginManifest:
    return npe2.PluginManifest.from_distribution("napari-dip-deblur")


def test_npe2_validate_passes():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-dip-deblur"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_package_manifest_is_the_top_level_one():
    link = PACKAGE / "napari.yaml"
    assert link.is_symlink() and link.resolve() == (ROOT / "napari.yaml").resolve()


def test_installed_manifest_is_this_file(manifest):
    here = npe2.PluginManifest.from_file(ROOT / "napari.yaml")
    assert manifest.name == here.name == "napari-dip-deblur"
    assert manifest.contributions == here.contributions


def test_every_contribution_names_a_declared_command(manifest):
    contrib = manifest.contributions
    declared = {c.id for c in contrib.commands}
    used = (
        [w.command for w in contrib.widgets or []]
        + [s.command for s in contrib.sample_data or []]
        + [w.command for w in contrib.writers or []]
        + [r.command for r in contrib.readers or []]
    )
    assert used and set(used) <= declared, set(used) - declared
    assert {c.id for c in contrib.commands} == set(used), "declared but unused commands"
    assert all(c.id.startswith("napari-dip-deblur.") for c in contrib.commands)


def test_every_python_name_resolves_to_its_defining_module(manifest):
    for command in manifest.contributions.commands:
        module_name, _, attr = command.python_name.partition(":")
        obj = getattr(importlib.import_module(module_name), attr)
        assert callable(obj), command.python_name
        # points at the module that defines it, never the package root (no Qt on import)
        assert obj.__module__ == module_name, command.python_name


def test_expected_contributions(manifest):
    contrib = manifest.contributions
    assert [w.command for w in contrib.widgets] == ["napari-dip-deblur.make_widget",
                                                    "napari-dip-deblur.make_microscopy_widget"]
    assert {s.key for s in contrib.sample_data} == {"blurred_photo", "blurred_fluorescence",
                                                    "widefield_fluorescence"}
    (writer,) = contrib.writers
    assert writer.layer_types == ["image"]
    assert set(writer.filename_extensions) == {".npy", ".tif", ".tiff"}
