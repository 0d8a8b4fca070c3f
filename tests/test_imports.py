"""The engine, API, metrics and CLI never import napari or Qt; the package root not even torch."""

import subprocess
import sys

GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return {name.split(".")[0] for name in out.split()}


def test_engine_api_metrics_and_cli_import_no_gui():
    loaded = _modules_after(
        "import napari_dip_deblur.api, napari_dip_deblur.engine.solver, "
        "napari_dip_deblur.metrics, napari_dip_deblur.levin, napari_dip_deblur.cli, "
        "napari_dip_deblur.samples; from napari_dip_deblur import deblur")
    assert "torch" in loaded
    assert not loaded & set(GUI_MODULES)


def test_package_import_is_light():
    loaded = _modules_after("import napari_dip_deblur")
    assert "torch" not in loaded and not loaded & set(GUI_MODULES)
