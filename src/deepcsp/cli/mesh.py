"""``deepcsp mesh`` (filled by the extraction issue)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from deepcsp.errors import DeepCSPError


@dataclass
class MeshCommand:
    """Extract a mesh from a field."""

    field: Annotated[Path, tyro.conf.Positional]
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("mesh.ply")

    def run(self) -> int:
        raise DeepCSPError("mesh is not available in this build")
