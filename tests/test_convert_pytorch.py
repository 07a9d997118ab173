"""The .pth reader: parses torch zip checkpoints without torch, refuses code."""

import io
import pickle
import zipfile

import numpy as np
import pytest

from utrans.convert import read_torch_state_dict
from utrans.core.errors import UnsafeCheckpointError


def _write_fake_pth(path, payload_pickle, storages):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ckpt/data.pkl", payload_pickle)
        z.writestr("ckpt/version", "3\n")
        for key, arr in storages.items():
            z.writestr(f"ckpt/data/{key}", arr.tobytes())


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_refuses_arbitrary_globals(tmp_path):
    path = tmp_path / "evil.pth"
    _write_fake_pth(path, pickle.dumps({"w": _Evil()}), {})
    with pytest.raises(UnsafeCheckpointError, match="refusing to load global"):
        read_torch_state_dict(path)


def test_missing_and_not_zip(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_torch_state_dict(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.pth is not a zip"):
        read_torch_state_dict(bad)


def test_reads_reference_checkpoint(reference):
    sd = read_torch_state_dict(reference("seist/seist_s_pmp_diting.pth"))
    assert len(sd) == 582
    w = sd["stem.0.convs.0.pconv.weight"]
    assert w.shape == (16, 3, 1) and w.dtype == np.float32
    np.testing.assert_allclose(w.ravel()[:3], [0.00129758, -0.0118953, 0.00511493], rtol=1e-5)
    assert sd["stem.0.convs.0.norm.num_batches_tracked"].dtype == np.int64


def test_matches_torch_load_when_available(reference):
    torch = pytest.importorskip("torch")
    path = reference("baselines/eqtransformer.pth")
    ours = read_torch_state_dict(path)
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs)
    for k, v in theirs.items():
        np.testing.assert_array_equal(ours[k], v.numpy(), err_msg=k)
