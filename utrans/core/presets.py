"""Published weights as presets: a table, a cache folder, a checked download.

Each preset names a weights file, its public URL and SHA-256 checksum, and the
registered model it fits. :func:`preset_path` finds the file in the cache
folder (``$UTRANS_HOME``, default ``~/.cache/utrans``), downloads it when it is
missing (pooch: a temporary file, checked against the checksum, then moved into
place) and otherwise fails with a message naming the file to place and where.
``utrans.load_model("seist_m_dpk_diting")`` builds the model and loads the
weights (:mod:`utrans.loading`)::

    picker = utrans.load_model("seist_m_dpk_diting")
    picker.conventions.sampling_rate        # 50.0: DiTing was recorded at 50 Hz

Every preset states the conventions of its training data
(:mod:`utrans.core.conventions`): the SeisT ``*_diting`` checkpoints take 50 Hz
Z, N, E windows of 8192 samples, the ``*_pnw`` ones 100 Hz, the U-Trans
foundation 100 Hz E, N, Z windows of 6000 samples. A model built from a
preset carries them.

The repository ships no weights.
"""

import dataclasses
import logging
import os
import pathlib

import pooch

from utrans.core.errors import ChecksumError, PresetUnavailableError
from utrans.core.registry import model_conventions

__all__ = [
    "PRESETS",
    "Preset",
    "cache_dir",
    "get_preset",
    "list_presets",
    "preset_conventions",
    "preset_path",
    "sha256sum",
]

logger = logging.getLogger(__name__)

_UTRANS_CITATION = "Saad et al., Scientific Reports (2026), doi:10.1038/s41598-026-41454-x"
_SEIST_CITATION = "Li et al., IEEE TGRS 62 (2024), doi:10.1109/TGRS.2024.3371503"
_SEIST_URL = "https://raw.githubusercontent.com/senli1073/SeisT/main/pretrained/{}"


@dataclasses.dataclass(frozen=True)
class Preset:
    """One published checkpoint.

    Args:
        name: preset name (the weights file stem).
        filename: file name in the cache folder.
        url: public download URL.
        sha256: hex SHA-256 of the file.
        model: registry name of the model the weights fit (``utrans.models.get_model``).
        format: ``"keras_h5"`` (legacy Keras 2 ``.h5``) or ``"torch"`` (PyTorch state_dict).
        citation: the paper to cite.
        conventions: the conventions of the training data where they differ
            from the model's defaults (``{"sampling_rate": 50.0}``), see
            :mod:`utrans.core.conventions`.
        dataset: the training dataset.
    """

    name: str
    filename: str
    url: str
    sha256: str
    model: str
    format: str
    citation: str
    conventions: dict = dataclasses.field(default_factory=dict)
    dataset: str = ""


# The training data of the SeisT checkpoints: DiTing (China Earthquake Networks,
# 50 Hz) and PNW (Pacific Northwest, 100 Hz); both fed to SeisT as Z, N, E.
_DATASET_CONVENTIONS = {
    "diting": ("DiTing", {"sampling_rate": 50.0, "component_order": "ZNE"}),
    "pnw": ("PNW", {"sampling_rate": 100.0, "component_order": "ZNE"}),
}
# Where P sits in the window of the heads that take one window per pick (pmp, emg,
# baz, dis). The reference trains them with its main.py default --p-position-ratio -1
# (its README commands set none): each window starts at a random sample before P, so P
# lies anywhere from 0.5 s into the window to its offset in the source trace, and the
# shift augmentation moves it anywhere. Applying a head to a pick needs one position:
# a tenth of the window (16.4 s of a 50 Hz, 8192-sample window) sits inside that
# training range and leaves 147 s after P for S and the coda.
_WINDOW_HEADS_P_POSITION = 0.1


def _seist(name, sha256):
    # seist_{s,m,l}_{task}_{dataset} fits the registered model seist_{s,m,l}_{task}.
    model, dataset = name.rsplit("_", 1)
    label, conventions = _DATASET_CONVENTIONS[dataset]
    conventions = dict(conventions)
    if model.rsplit("_", 1)[1] in ("pmp", "emg", "baz", "dis"):
        conventions["p_position_ratio"] = _WINDOW_HEADS_P_POSITION
    return Preset(
        name=name,
        filename=f"{name}.pth",
        url=_SEIST_URL.format(f"{name}.pth"),
        sha256=sha256,
        model=model,
        format="torch",
        citation=_SEIST_CITATION,
        conventions=conventions,
        dataset=label,
    )


PRESETS = {
    p.name: p
    for p in [
        Preset(
            name="utrans_foundation",
            filename="UTrans_Foundation.h5",
            url=(
                "https://raw.githubusercontent.com/omarmohamed15/"
                "U-Trans-Foundation-For-Seismic-Waveform-Representation/main/weights/"
                "UTrans_Foundation.h5"
            ),
            sha256="56760438ba460ee9162130a7748fe13e9197ebe75335f19e8e7b0d5abe3613ab",
            model="utrans_foundation",
            format="keras_h5",
            citation=_UTRANS_CITATION,
            conventions={"sampling_rate": 100.0, "component_order": "ENZ", "in_samples": 6000},
            dataset="STEAD",
        ),
        _seist("seist_l_baz_diting", "5a7f5893e82ce8dc1398bc8d94910aa953da0e0845eba6f84e0e09a846e2509a"),
        _seist("seist_l_dis_diting", "f292454209f8a576fcaaa978dc1a380c8115dee5a6dc3f17615526cc31a51c0c"),
        _seist("seist_l_dpk_diting", "6d6ab4a493a76c4988de0fa0a5c032d8c5ab6dd92fd5fb76481e7e876301e187"),
        _seist("seist_l_emg_diting", "0bb456c454fb0fdac7f2eb664c065c1082a27fd924bf96cc7a3ea3d08b864c80"),
        _seist("seist_l_emg_pnw", "5210f687953c81f69d04362256ea7c239974c59aef6287712fc49da34363d9a0"),
        _seist("seist_l_pmp_diting", "24466944d842295577711897e5df4ea67c745ba6f5518c284c82841ef03cdaec"),
        _seist("seist_m_baz_diting", "9165b29ceb3744de189d8229bc2eccb581773df01401f136420fc2ea38100aaa"),
        _seist("seist_m_dis_diting", "bd1627e98ee0a8e37a7df4c0174af641fb960b1bbf16c47a3480b8794a4a39ca"),
        _seist("seist_m_dpk_diting", "698c8500f5d047e2a28fe75e838db499d315c23550bd529efbe4d14e0a96ab58"),
        _seist("seist_m_emg_diting", "014cab39d562c48305c07ac86fccc0bafe8d6ebf19eda048057a07cc20ca8dae"),
        _seist("seist_m_emg_pnw", "8b8d996f02131fff55dd54668dbf20f8288f8382d222db46a0b93e4fd51c98d0"),
        _seist("seist_m_pmp_diting", "03ce61a610550d7bcd41d0255371efad3a759d4e8f5733b3f1f9ded4caf43fc8"),
        _seist("seist_s_baz_diting", "3b5b26410890aa31445df3e45c30074e43c2562cb76f7313da8f088bfbfffaf9"),
        _seist("seist_s_dis_diting", "28004cede1f275326f270ba24019c02c5bdc68235ed037113158000d5b1d1cab"),
        _seist("seist_s_dpk_diting", "c3e6fbb357e84f3466b7774cde69e871a1edf32ae5c851995dc3278723f65e52"),
        _seist("seist_s_emg_diting", "86a39b5d4328d92305684fc6aa0f51816d9d18969de906988336b24e9568628a"),
        _seist("seist_s_emg_pnw", "c9acc7745f8af9a1663ab340b770af73f8d81a11a06304123e13d191372080f4"),
        _seist("seist_s_pmp_diting", "afa8ac49fb1b5b56eb268764980e3f0654d16feb732576fadd8d3abd0283a617"),
    ]
}


def list_presets(model=None):
    """Sorted preset names, optionally only those whose weights fit registry model ``model``.

    Args:
        model: a registry name such as ``"seist_m_dpk"`` (``None``: all presets).

    Returns:
        A list of preset names.
    """
    return sorted(n for n, p in PRESETS.items() if model is None or p.model == model)


def get_preset(name):
    """The :class:`Preset` called ``name``.

    Args:
        name: a name from :func:`list_presets`.

    Returns:
        The :class:`Preset`.
    """
    if name not in PRESETS:
        raise KeyError(f"Unknown preset {name!r}. Available presets: {', '.join(list_presets())}")
    return PRESETS[name]


def cache_dir():
    """The preset cache folder: ``$UTRANS_HOME`` or ``~/.cache/utrans``.

    Returns:
        A ``pathlib.Path`` (not created by this function).
    """
    home = os.environ.get("UTRANS_HOME")
    if home:
        return pathlib.Path(home).expanduser()
    return pathlib.Path.home() / ".cache" / "utrans"


def sha256sum(path):
    """Hex SHA-256 digest of a file.

    Args:
        path: the file.

    Returns:
        The lowercase hex digest.
    """
    return pooch.file_hash(str(path), alg="sha256")


def preset_conventions(name):
    """The conventions of a preset: its model's defaults with those of its training data.

    Args:
        name: a name from :func:`list_presets`.

    Returns:
        A :class:`~utrans.core.conventions.Conventions`.
    """
    preset = get_preset(name)
    return model_conventions(preset.model).replace(**preset.conventions)


def _download(preset, dest, timeout):
    """Download ``preset.url`` to ``dest``, checked against the preset's SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading preset %s from %s", preset.name, preset.url)
    try:
        pooch.retrieve(preset.url, known_hash=f"sha256:{preset.sha256}", fname=dest.name,
                       path=dest.parent, downloader=pooch.HTTPDownloader(timeout=timeout))
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise
        raise ChecksumError(
            f"Downloaded {preset.url} for preset {preset.name!r} does not have the SHA-256 "
            f"{preset.sha256}; the download was discarded. Place the correct "
            f"{preset.filename} at {dest}."
        ) from None
    except OSError as err:
        raise PresetUnavailableError(
            f"Weights file {preset.filename} for preset {preset.name!r} is not in the cache and "
            f"could not be downloaded from {preset.url} ({err}). Download it by other means "
            f"and place it at {dest} (SHA-256 {preset.sha256}), or set UTRANS_HOME to the "
            "folder holding it."
        ) from err
    return dest


def preset_path(name, download=True, verify=True, timeout=60.0):
    """Local path of a preset's weights file, downloading it into the cache if missing.

    Args:
        name: a name from :func:`list_presets`.
        download: whether a missing file may be downloaded.
        verify: check the SHA-256 of a file already in the cache.
        timeout: network timeout in seconds for connecting and for each read.

    Returns:
        A ``pathlib.Path`` to the checked file in :func:`cache_dir`.

    Raises:
        KeyError: unknown preset name.
        ChecksumError: the cached or downloaded file has the wrong SHA-256
            (a bad download is deleted; a cached file is left in place).
        PresetUnavailableError: the file is missing and cannot be downloaded;
            the message names the file and the folder to place it in.
    """
    preset = get_preset(name)
    dest = cache_dir() / preset.filename
    if dest.is_file():
        if verify:
            received = sha256sum(dest)
            if received != preset.sha256:
                raise ChecksumError(
                    f"{dest} has SHA-256 {received}, expected {preset.sha256} for preset "
                    f"{name!r}; delete it to download it again, or replace it with the file "
                    f"from {preset.url}."
                )
        return dest
    if not download:
        raise PresetUnavailableError(
            f"Weights file {preset.filename} for preset {name!r} is not in the cache. "
            f"Place it at {dest} (from {preset.url}, SHA-256 {preset.sha256}) or set "
            "UTRANS_HOME to the folder holding it."
        )
    return _download(preset, dest, timeout)
