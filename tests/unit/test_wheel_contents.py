"""The built wheel ships the server, not the test fakes in ``voxdialog.testing``."""

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str:
    local = ROOT / ".tools" / "bin" / "uv"
    if local.exists():
        return str(local)
    found = shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed")
    return found


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [_uv(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)],
        check=True,
        timeout=110,
    )
    (wheel,) = out.glob("voxdialog-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_the_wheel_leaves_out_the_test_fakes(wheel_names: list[str]) -> None:
    assert [n for n in wheel_names if n.startswith("voxdialog/testing/")] == []


def test_the_wheel_holds_the_server_and_its_web_files(wheel_names: list[str]) -> None:
    names = set(wheel_names)
    for path in (
        "voxdialog/__init__.py",
        "voxdialog/cli.py",
        "voxdialog/app.py",
        "voxdialog/py.typed",
    ):
        assert path in names
    assert any(n.startswith("voxdialog/web/static/") and n.endswith(".html") for n in names)
    assert any(n.startswith("voxdialog/api/routes/") for n in names)
