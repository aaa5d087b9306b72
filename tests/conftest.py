"""Shared fixtures: seeded randomness, the dev meshes, a small fitted field, tiny meshes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"


def dev_meshes_dir() -> Path:
    """Where the dev meshes are looked for: ``$DEEPCSP_MESHES`` when set (set it to an empty folder
    to run the suite as on a fresh clone), else ``../shared/data/meshes`` next to the repo."""
    env = os.environ.get("DEEPCSP_MESHES")
    return Path(env) if env else REPO.parent / "shared" / "data" / "meshes"


def _meshes_dir() -> Path | None:
    cand = dev_meshes_dir()
    return cand if (cand / "closed").is_dir() else None


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test (tests never share random state)."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def meshes_dir() -> Path:
    """The dev meshes (``../shared/data/meshes`` next to the repo); the test skips if absent."""
    d = _meshes_dir()
    if d is None:
        pytest.skip(
            f"needs the dev meshes, not found in {dev_meshes_dir()} "
            "(set DEEPCSP_MESHES or put them in ../shared/data/meshes)"
        )
    return d


@pytest.fixture(scope="session")
def bundled_tee() -> Path:
    """The T-shirt mesh shipped inside the package (always present; the dev set's open/tee_sim.obj)."""
    from importlib import resources

    return Path(str(resources.files("deepcsp") / "data" / "tee_sim.obj"))


@pytest.fixture(scope="session")
def bundled_spot() -> Path:
    """The closed cow mesh shipped inside the package (always present; the dev set's closed/spot.obj)."""
    from importlib import resources

    return Path(str(resources.files("deepcsp") / "data" / "spot.obj"))


@pytest.fixture(scope="session")
def tiny_field(bundled_tee):
    """A small fitted CSP field of the bundled T-shirt (collocation only, ~1 s): a
    :class:`deepcsp.fields.query.NeuralField` with ``.normalization`` and the query API.
    Shared by the whole session: do not modify it."""
    from deepcsp.fields import FieldConfig
    from deepcsp.fit import FitConfig, fit_surface
    from deepcsp.io import load_surface

    cfg = FitConfig(max_steps=0, eval_points=0, field=FieldConfig(resolution=48, coarse_resolution=16))
    return fit_surface(load_surface(bundled_tee), cfg).field


@pytest.fixture
def tetrahedron() -> tuple[np.ndarray, np.ndarray]:
    """A closed tetrahedron ``(vertices (4, 3), faces (4, 3))`` with outward winding."""
    v = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return v, f


def random_mesh(rng: np.random.Generator, n_faces: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A random triangle soup with shared vertices (``3 * n_faces // 2`` vertices in [-0.5, 0.5]^3)."""
    v = rng.uniform(-0.5, 0.5, (max(3 * n_faces // 2, 3), 3))
    f = np.stack([rng.choice(len(v), 3, replace=False) for _ in range(n_faces)])
    return v, f
