"""Weight files shared by fields and models: one ``.safetensors`` file whose header metadata key
``deepcsp`` holds a JSON object (format, version, config, ...). Writing is atomic; reading never
unpickles and turns every failure into a :class:`DeepCSPError` naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from deepcsp.errors import DeepCSPError


def write_weights(path: str | Path, tensors: dict[str, torch.Tensor], header: dict) -> Path:
    """Write ``tensors`` with ``header`` (JSON) to ``path`` atomically (temp file + rename)."""
    from safetensors.torch import save_file

    from deepcsp._atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
            str(tmp),
            metadata={"deepcsp": json.dumps(header)},
        )
    return path


def read_weights(path: str | Path, what: str, fmt: str, version: int) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, header)`` of a file written by :func:`write_weights` with ``header["format"] == fmt``
    and a version no newer than ``version``; ``what`` names the kind of file in error messages."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise DeepCSPError(f"{what} file not found", path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:
        raise DeepCSPError(f"is not a readable {what} (safetensors: {str(exc).splitlines()[0][:120]})", path) from None
    if "deepcsp" not in meta:
        raise DeepCSPError(f"is a safetensors file but not a {what} (no 'deepcsp' header)", path)
    try:
        header = json.loads(meta["deepcsp"])
        if header.get("format") != fmt:
            raise ValueError(f"format {header.get('format')!r}, expected {fmt!r}")
        if int(header.get("version", 0)) > version:
            raise ValueError(f"written by a newer deepcsp (format version {header['version']})")
    except Exception as exc:
        raise DeepCSPError(f"header does not describe a {what} ({str(exc).splitlines()[0][:200]})", path) from None
    return tensors, header


def check_finite(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Raise DeepCSPError if a floating-point tensor holds NaN or inf."""
    for k, v in tensors.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise DeepCSPError(f"weights {k!r} contain NaN or inf", path)
