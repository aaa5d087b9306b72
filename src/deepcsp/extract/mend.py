"""Defects around small holes, cut out and filled: twists and bridges.

Two defects keep a small hole of a refined mesh open after the small-hole fill
(:func:`~deepcsp.extract.pseudo.fill_surface_holes`), both where a thin part's two sides or two
sheets pass within a few cells:

* a **twist** (:func:`untwist_holes`): at a sharp thin edge (an airplane fin's leading edge) the rim
  of a hole joins the part's two sides with a half twist, so no winding is consistent there; the
  mesh keeps a short seam of inconsistently wound edges
  (:func:`~deepcsp.extract.topology.orient_faces`) and the hole, whose boundary changes direction
  at the seam, is no simple loop, so the fill skips it. The seam's faces are cut (as
  :func:`~deepcsp.extract.topology.cut_short_seams` does), which leaves the rest consistently wound.
* a **bridge** (:func:`unbridge_holes`): wall faces (well off the field's surface) join two sheets
  a few cells apart around a hole whose rim runs from one sheet across the walls to the other and
  back (armor_jacket's layers, 2.6 cells apart), so its fan would lie off the surface. The walls
  reaching the hole are cut.

Then the fill runs again, with the small pieces the cut left (at most ``speck_faces`` faces, touching
it) dropped too. The result is kept only when no vertex of a cut face is left on a boundary it was
not on before (every cut was closed) and it has fewer boundary loops + inconsistent edges (pieces may
be more: a bridge can be all that joined two sheets).
A surface twisted as a whole (a Moebius strip, whose seam runs across the strip) or a true hole
beside a wall stays as it was: the fill leaves the cut open.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deepcsp.extract.grid import Queries
from deepcsp.extract.holes import boundary_loops
from deepcsp.extract.topology import (
    boundary_loop_count,
    boundary_vertex_mask,
    face_components,
    inconsistent_edge_count,
    short_seam_faces,
)

#: ``fill(verts, faces) -> (verts, faces, holes closed)``, new vertices appended after ``verts``.
Fill = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, int]]


def untwist_holes(
    verts: np.ndarray, faces: np.ndarray, fill: Fill, max_extent: float, speck_faces: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(verts, faces, holes closed)``: ``faces (F, 3)`` without the faces of its seams of
    inconsistent winding that span at most ``max_extent`` (:func:`short_seam_faces`), refilled by
    ``fill``; unchanged unless that mends the mesh (see the module docstring)."""
    seams = short_seam_faces(verts, faces, max_extent)
    cut = np.zeros(len(faces), dtype=bool)
    cut[seams.faces] = True
    return _cut_and_refill(verts, faces, cut, fill, speck_faces)


def unbridge_holes(
    fq: Queries,
    verts: np.ndarray,
    faces: np.ndarray,
    fill: Fill,
    wall: float,
    bias: float,
    max_edges: int,
    speck_faces: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(verts, faces, holes closed)``: ``faces (F, 3)`` without the walls (faces whose centroid lies
    more than ``wall`` off the field's surface, ``bias`` removed) that reach the simple boundary loops
    of at most ``max_edges`` edges, refilled by ``fill``; unchanged unless that mends the mesh (see
    the module docstring)."""
    loops = [loop for loop in boundary_loops(faces, len(verts)) if len(loop) <= max_edges]
    if not loops:
        return verts, faces, 0
    cut = _walls_reaching(fq, verts, faces, np.concatenate(loops), wall, bias)
    return _cut_and_refill(verts, faces, cut, fill, speck_faces)


def _walls_reaching(
    fq: Queries, verts: np.ndarray, faces: np.ndarray, seeds: np.ndarray, wall: float, bias: float
) -> np.ndarray:
    """``(F,)`` bool: the wall faces joined to the vertices ``seeds`` through wall faces (the
    field's distance at each face's centroid is asked once, as the region grows)."""
    off = np.full(len(faces), np.nan)
    walls = np.zeros(len(faces), dtype=bool)
    reached = np.zeros(len(verts), dtype=bool)
    reached[seeds] = True
    while True:
        ask = np.flatnonzero(reached[faces].any(1) & np.isnan(off))
        if len(ask) == 0:
            return walls
        off[ask] = fq.off_surface(verts[faces[ask]].mean(1), bias)
        new = ask[off[ask] > wall]
        if len(new) == 0:
            return walls
        walls[new] = True
        reached[faces[new].ravel()] = True


def _cut_and_refill(
    verts: np.ndarray, faces: np.ndarray, cut: np.ndarray, fill: Fill, speck_faces: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The mesh without the faces ``cut (F,)`` and the pieces of at most ``speck_faces`` faces that
    leaves touching them, refilled; kept when every cut is closed and the loops and seams are fewer."""
    if not cut.any():
        return verts, faces, 0
    cut = cut | _debris(verts, faces, cut, speck_faces)
    new_verts, new_faces, n_filled = fill(verts, faces[~cut])
    n = len(new_verts)
    opened = boundary_vertex_mask(new_faces, n) & ~boundary_vertex_mask(faces, n)
    if opened[faces[cut]].any():  # a cut that the fill did not close
        return verts, faces, 0
    if _loops_and_seams(new_faces, n) >= _loops_and_seams(faces, len(verts)):
        return verts, faces, 0
    return new_verts, new_faces, n_filled


def _debris(verts: np.ndarray, faces: np.ndarray, cut: np.ndarray, speck_faces: int) -> np.ndarray:
    """``(F,)`` bool: the faces of the pieces of at most ``speck_faces`` faces that the mesh without
    ``cut`` has and that share a vertex with a cut face."""
    debris = np.zeros(len(faces), dtype=bool)
    kept = np.flatnonzero(~cut)
    if speck_faces <= 0 or len(kept) == 0:
        return debris
    _, label = face_components(faces[kept], len(verts))
    at_cut = np.zeros(len(verts), dtype=bool)
    at_cut[faces[cut].ravel()] = True
    small = np.bincount(label) <= speck_faces
    touching = np.zeros(len(small), dtype=bool)
    touching[label[at_cut[faces[kept]].any(1)]] = True
    debris[kept[(small & touching)[label]]] = True
    return debris


def _loops_and_seams(faces: np.ndarray, n_vertices: int) -> int:
    """Boundary loops + inconsistently wound edges (not pieces: a bridge may be all that joined two
    sheets)."""
    return boundary_loop_count(faces, n_vertices) + inconsistent_edge_count(faces, n_vertices)
