"""``deepcsp render`` (filled by the rendering issue)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from deepcsp.errors import DeepCSPError


@dataclass
class RenderCommand:
    """Render a field by sphere tracing."""

    field: Annotated[Path, tyro.conf.Positional]
    output: Annotated[Path, tyro.conf.arg(aliases=["-o"])] = Path("render.png")

    def run(self) -> int:
        raise DeepCSPError("render is not available in this build")
