"""Presets: the table of published weights, the cache folder, checked downloads, clear failures."""

import dataclasses
import functools
import http.server
import pathlib
import re
import shutil
import threading
import time

import keras
import numpy as np
import pytest
from conftest import require_reference

from utrans.core import presets
from utrans.core.errors import ChecksumError, PresetUnavailableError
from utrans.core.presets import PRESETS, cache_dir, list_presets, preset_path, sha256sum
from utrans.loading import load_model
from utrans.models import UTransBackbone

H5 = "utrans/UTrans_Foundation.h5"
UNREACHABLE = "http://127.0.0.1:9/UTrans_Foundation.h5"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output clean
        pass


@pytest.fixture
def http_folder(tmp_path):
    """``(folder, base_url)``: files put in ``folder`` are served over http on 127.0.0.1."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _set_url(monkeypatch, name, url):
    monkeypatch.setitem(PRESETS, name, dataclasses.replace(PRESETS[name], url=url))


def _fill_cache(home, relpath=H5):
    source = require_reference(relpath)
    shutil.copy(source, home / source.name)
    return home / source.name


def test_table_matches_weights_md():
    text = require_reference("WEIGHTS.md").read_text()
    rows = re.findall(r"^\| (\S+) \| (\S+) \| (https://\S+) \| ([0-9a-f]{64}) \|$", text, re.M)
    assert len(rows) == 19
    assert sorted(r[0] for r in rows) == list_presets()
    for name, filename, url, sha in rows:
        preset = PRESETS[name]
        assert (preset.filename, preset.url, preset.sha256) == (filename, url, sha)


def test_models_and_formats():
    assert len(PRESETS) == 19
    assert PRESETS["utrans_foundation"].model == "utrans_foundation"
    assert PRESETS["utrans_foundation"].format == "keras_h5"
    assert PRESETS["seist_m_dpk_diting"].model == "seist_m_dpk"
    assert PRESETS["seist_l_emg_pnw"].model == "seist_l_emg"
    assert PRESETS["seist_s_pmp_diting"].format == "torch"
    assert list_presets(model="seist_s_emg") == ["seist_s_emg_diting", "seist_s_emg_pnw"]
    with pytest.raises(KeyError, match="Unknown preset 'utrans'.*utrans_foundation"):
        preset_path("utrans")


def test_cache_dir(monkeypatch, tmp_path, utrans_home):
    assert cache_dir() == utrans_home
    monkeypatch.delenv("UTRANS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "utrans"


def test_cached_file_used_without_network(monkeypatch, utrans_home):
    cached = _fill_cache(utrans_home)
    _set_url(monkeypatch, "utrans_foundation", UNREACHABLE)
    assert preset_path("utrans_foundation") == cached


def test_from_preset_matches_golden(monkeypatch, utrans_home):
    _fill_cache(utrans_home)
    _set_url(monkeypatch, "utrans_foundation", UNREACHABLE)
    with np.load(require_reference("utrans/foundation_golden.npz")) as golden:
        x, latent = golden["x"], golden["latent"]
    backbone = UTransBackbone.from_preset("utrans_foundation")
    out = keras.ops.convert_to_numpy(backbone(x, training=False)["latent"])
    assert float(np.abs(out - latent).max()) <= 1e-5

    model = load_model("utrans_foundation")
    assert isinstance(model, UTransBackbone)
    for a, b in zip(model.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_from_preset_rejects_other_models():
    with pytest.raises(ValueError, match=r"builds 'seist_m_dpk'.*utrans.load_model\('seist_m_dpk_diting'\)"):
        UTransBackbone.from_preset("seist_m_dpk_diting")


def test_missing_file_and_no_network(monkeypatch, utrans_home):
    _set_url(monkeypatch, "utrans_foundation", UNREACHABLE)
    start = time.monotonic()
    with pytest.raises(PresetUnavailableError) as info:
        preset_path("utrans_foundation", timeout=5)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "UTrans_Foundation.h5" in message
    assert str(utrans_home / "UTrans_Foundation.h5") in message
    assert UNREACHABLE in message
    assert list(utrans_home.iterdir()) == []  # no partial file left behind


def test_no_download_allowed(utrans_home):
    with pytest.raises(PresetUnavailableError, match=re.escape(str(utrans_home / "seist_s_dpk_diting.pth"))):
        preset_path("seist_s_dpk_diting", download=False)


def test_download_checks_and_caches(monkeypatch, utrans_home, http_folder):
    folder, base = http_folder
    shutil.copy(require_reference(H5), folder / "published.h5")
    _set_url(monkeypatch, "utrans_foundation", f"{base}/published.h5")
    path = preset_path("utrans_foundation")
    assert path == utrans_home / "UTrans_Foundation.h5"
    assert sha256sum(path) == PRESETS["utrans_foundation"].sha256
    assert sorted(p.name for p in utrans_home.iterdir()) == ["UTrans_Foundation.h5"]
    (folder / "published.h5").unlink()  # the cached file is used from now on
    assert preset_path("utrans_foundation") == path


def test_download_with_wrong_checksum_is_discarded(monkeypatch, utrans_home, http_folder):
    folder, base = http_folder
    (folder / "impostor.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(1000))
    _set_url(monkeypatch, "utrans_foundation", f"{base}/impostor.h5")
    with pytest.raises(ChecksumError, match="SHA-256 56760438ba46.*discarded"):
        preset_path("utrans_foundation")
    assert list(utrans_home.iterdir()) == []


def test_download_of_a_missing_file_fails_clearly(monkeypatch, utrans_home, http_folder):
    folder, base = http_folder
    _set_url(monkeypatch, "utrans_foundation", f"{base}/gone.h5")
    with pytest.raises(PresetUnavailableError, match="404") as info:
        preset_path("utrans_foundation")
    message = str(info.value)
    assert f"{base}/gone.h5" in message
    assert str(utrans_home / "UTrans_Foundation.h5") in message
    assert list(utrans_home.iterdir()) == []


def test_cached_file_with_wrong_checksum(utrans_home):
    bad = utrans_home / "UTrans_Foundation.h5"
    bad.write_bytes(b"not the published weights")
    with pytest.raises(ChecksumError, match=re.escape(str(bad))):
        preset_path("utrans_foundation")
    assert bad.exists()  # the user's file is not deleted
    assert preset_path("utrans_foundation", verify=False) == bad


def test_sha256sum(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256sum(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert isinstance(presets.cache_dir(), pathlib.Path)
