"""Shared fixtures: seeded randomness, the dev meshes, a small fitted field, tiny meshes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"


def _meshes_dir() -> Path | None:
    for cand in (REPO.parent / "shared" / "data" / "meshes", Path("/work/shared/data/meshes")):
        if (cand / "closed").is_dir():
            return cand
    return None


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test (tests never share random state)."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def meshes_dir() -> Path:
    """The dev meshes (``../shared/data/meshes`` next to the repo); the test skips if absent."""
    d = _meshes_dir()
    if d is None:
        pytest.skip("dev meshes not found (expected ../shared/data/meshes next to the repo)")
    return d


@pytest.fixture(scope="session")
def bundled_tee() -> Path:
    """The T-shirt mesh shipped inside the package (always present)."""
    from importlib import resources

    return Path(str(resources.files("deepcsp") / "data" / "tee_sim.obj"))


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
