"""Holes whose winding flips: small twisted defects cut out and filled.

At a sharp thin edge (an airplane fin's leading edge) the rim of a small hole can join the two
sides of the part with a half twist. No winding is then consistent there: the mesh keeps a short
seam of inconsistently wound edges (:func:`~deepcsp.extract.topology.orient_faces`), and the hole's
boundary changes direction at the seam, so it is no simple loop and the small-hole fill
(:func:`~deepcsp.extract.pseudo.fill_surface_holes`) leaves it open. :func:`untwist_holes` drops
the faces of short seams (as :func:`~deepcsp.extract.topology.cut_short_seams` does), which leaves the
rest consistently wound, and fills the holes again; the result is kept only
when it has fewer inconsistent edges, no more boundary loops and no vertex of a dropped face on a
boundary it was not on before (the dropped faces' hole was closed). A surface twisted as a whole
(a Moebius strip, whose seam runs across the strip) stays as it was: the cut across it is no small
hole on the surface, so the fill leaves it open.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deepcsp.extract.topology import (
    boundary_half_edges,
    boundary_loop_count,
    inconsistent_edge_count,
    short_seam_faces,
)

#: ``fill(verts, faces) -> (verts, faces, holes closed)``, new vertices appended after ``verts``.
Fill = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, int]]


def untwist_holes(
    verts: np.ndarray, faces: np.ndarray, fill: Fill, max_extent: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(verts, faces, holes closed)``: ``faces (F, 3)`` without the faces of its seams of
    inconsistent winding that span at most ``max_extent`` (:func:`short_seam_faces`), refilled by
    ``fill``; unchanged when that leaves a hole open or the winding no better (see the
    module docstring)."""
    seams = short_seam_faces(verts, faces, max_extent)
    if len(seams.faces) == 0:
        return verts, faces, 0
    # the seam's faces gone, the rest is wound consistently already (only they disagreed)
    new_verts, new_faces, n_filled = fill(verts, np.delete(faces, seams.faces, axis=0))
    n = len(new_verts)
    opened = _on_boundary(new_faces, n) & ~_on_boundary(faces, n)
    if opened[faces[seams.faces]].any():  # the cut left a hole that the fill did not close
        return verts, faces, 0
    worse_loops = boundary_loop_count(new_faces, n) > boundary_loop_count(faces, len(verts))
    if worse_loops or inconsistent_edge_count(new_faces, n) >= seams.n_seam_edges:
        return verts, faces, 0
    return new_verts, new_faces, n_filled


def _on_boundary(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """``(n_vertices,)`` bool: the vertices of the edges only one face uses."""
    on = np.zeros(n_vertices, dtype=bool)
    on[boundary_half_edges(faces, n_vertices).ravel()] = True
    return on
