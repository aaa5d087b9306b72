"""deepcsp: neural closest surface-point (CSP) fields for open and closed surfaces.

The package is layered (see README): ``geometry`` (pure math) <- ``fields`` (nn.Modules)
<- ``fit`` / ``render`` / ``extract`` / ``train`` <- ``cli``. ``io`` is usable from all.
"""

from __future__ import annotations

from deepcsp.errors import DeepCSPError

__version__ = "0.1.0"

__all__ = ["DeepCSPError", "__version__", "load"]


def load(path, device: str = "cpu"):
    """Load a field saved by ``deepcsp fit`` (one ``.safetensors`` file) ready for queries.

    Returns a :class:`deepcsp.fields.query.Field`. Loading never unpickles.
    """
    from deepcsp.fields.query import load_field

    return load_field(path, device=device)
