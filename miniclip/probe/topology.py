"""The shape of a point cloud: persistence diagrams (H0, H1) and the Wasserstein distance between them.

A class's image embeddings are a cloud of points on the sphere. Grow a ball of radius r around
every point and watch the union change as r grows: separate blobs merge (0-dimensional holes,
H0, die) and loops appear and are filled in (1-dimensional holes, H1, are born and die). Each
hole is a bar ``(birth, death)``; the multiset of bars is the cloud's persistence diagram.

**Vietoris–Rips filtration.** With a distance matrix D, the complex at scale r holds every
simplex whose points are pairwise within r. A simplex enters at the value of its longest edge::

    value(v) = 0            value({i, j}) = D[i, j]            value({i, j, k}) = max(D[i,j], D[i,k], D[j,k])

**H0** (single linkage): every point is born at 0; Kruskal's algorithm adds the edges in
order of length, and an edge joining two different components (found with union–find) kills
one of them at its length. The edges that kill are the minimum spanning tree; one component
lives for ever, the bar ``(0, inf)``.

**H1** (boundary-matrix reduction over Z/2): the boundary of triangle {i, j, k} is the set of
its three edges. Put the triangles' boundaries as columns in filtration order, rows = edges
in filtration order, and reduce left to right::

    low(c) = the latest edge in column c  (its "lowest one")
    while another reduced column c' has low(c') == low(c):  c ← c + c'   (mod 2: symmetric difference)

A column left non-zero pairs edge low(c) (a loop is born) with triangle c (it is filled in):
the bar ``(value(low(c)), value(c))``, kept when death > birth (ripser drops zero-length bars
too). A column reduced to zero is a triangle that closes no loop. Every loop is filled in by
the enclosing radius (below), so H1 has no infinite bar.
This is the "standard algorithm" of Edelsbrunner, Letscher & Zomorodian (2002) and
Zomorodian & Carlsson (2005); ripser (Bauer 2021) computes the same diagrams far faster.

Two exact savings keep ~100 points within seconds (both also used by ripser):
- *The enclosing radius* ``R = min_i max_j D[i, j]``: at scale R some point is within R of all
  others, so the complex is a cone on it — contractible, no holes. No H1 bar is born or dies
  after R, so only edges and triangles with value ≤ R are built.
- *Compression* (Bauer, Kerber & Reininghaus 2014): an edge that kills an H0 component (a
  spanning-tree edge) is never the lowest one of a reduced triangle column, so its row is
  removed before reducing.

Columns are Python integers used as bit sets (bit e set = edge e in the boundary): adding
two columns mod 2 is ``a ^ b`` and the lowest one is ``c.bit_length() - 1``.

**Wasserstein-1 distance** between diagrams A and B (finite bars only; bars with infinite
death are dropped, as persim does): the cheapest matching in which a bar may also be sent to
the diagonal (a bar of zero persistence, which every diagram has infinitely many of)::

    W1(A, B) = min over matchings  Σ ground(a, b)  +  Σ_unmatched ground(p, diagonal)

With persim's ground metric (Euclidean, as in persim 0.4's ``wasserstein``): ground(a, b) = ‖a − b‖₂ and
ground(p, diagonal) = (death − birth) / √2, the distance to the nearest point (m, m) of the
diagonal. ``ground="linf"`` gives the L∞ variant, ‖a − b‖∞ and (death − birth) / 2. The
matching is an assignment problem on the (|A|+|B|) × (|A|+|B|) cost matrix::

              B (n cols)          diagonal (m cols)
    A (m)   [ ground(a_i, b_j)    ground(a_i, diag)  ]
    diag(n) [ ground(b_j, diag)   0                  ]

(each row of A may go to any diagonal column: the diagonal is one place, copied as many times
as needed), solved by the Hungarian algorithm below.

Lesson 12 works both by hand first, on eight points on a circle and two small diagrams.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from miniclip.backend import to_host
from miniclip.evaluation.inputs import check_points

SYMMETRY_TOLERANCE = 1e-9  # |D - Dᵀ| allowed in a distance matrix (rounding, not asymmetry)


# ----------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------


def _as_cloud(points: Any, name: str = "points") -> np.ndarray:
    """A finite (N, d) float64 host array, or a ValueError naming what is wrong."""
    x = np.asarray(to_host(points), dtype=np.float64)
    check_points(x, name)
    return x


def cosine_distances(points: Any) -> np.ndarray:
    """Cosine distance matrix ``D[i, j] = 1 − x_i·x_j / (‖x_i‖ ‖x_j‖)`` of an (N, d) cloud → (N, N).

    Values lie in [0, 2]; the diagonal is exactly 0 and D is exactly symmetric. A zero vector
    has no direction and is refused.
    """
    x = _as_cloud(points)
    norms = np.linalg.norm(x, axis=1)  # (N,)
    if np.any(norms == 0):
        raise ValueError(f"points has zero vectors (rows {np.flatnonzero(norms == 0)[:5].tolist()}): no cosine")
    u = x / norms[:, None]  # (N, d) unit vectors
    d = 1.0 - u @ u.T  # (N, N)
    d = np.clip((d + d.T) / 2, 0.0, 2.0)  # exactly symmetric, rounding clipped
    np.fill_diagonal(d, 0.0)
    return d


def subsample(points: Any, k: int, seed: int = 0) -> np.ndarray:
    """The indices of ``k`` points drawn without replacement from an (N, d) cloud, seeded → (k,) sorted."""
    x = _as_cloud(points)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"asked for {k} points but the cloud has {n} (need 1 ≤ k ≤ {n})")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def check_distance_matrix(distances: Any) -> np.ndarray:
    """A square, symmetric, finite, non-negative (N, N) float64 host matrix, or a ValueError naming the fault."""
    d = np.asarray(to_host(distances), dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"a distance matrix must be square (N, N), got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("the distance matrix contains NaN or infinite values")
    if d.size and np.max(np.abs(d - d.T)) > SYMMETRY_TOLERANCE:
        raise ValueError(f"the distance matrix is not symmetric (max |D - Dᵀ| = {np.max(np.abs(d - d.T)):.3g})")
    if np.any(d < 0):
        raise ValueError("the distance matrix has negative entries")
    return d


def _edges(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All edges i < j in filtration order (by length; ties by index) → (E, 2) vertex pairs, (E,) lengths."""
    i, j = np.triu_indices(d.shape[0], k=1)
    order = np.argsort(d[i, j], kind="stable")
    pairs = np.stack([i[order], j[order]], axis=1)  # (E, 2)
    return pairs, d[pairs[:, 0], pairs[:, 1]]


# ----------------------------------------------------------------------------------------------
# H0: Kruskal's minimum spanning tree with union–find
# ----------------------------------------------------------------------------------------------


class UnionFind:
    """Disjoint sets of 0..n-1: ``find`` the representative (with path halving), ``union`` two sets."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]  # path halving
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> bool:
        """Merge the sets of a and b; False if they were already one set."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True


def _kruskal(d: np.ndarray) -> tuple[list[float], set[int]]:
    """Kruskal over the sorted edges: the death values of H0 and the filtration ranks of the tree edges."""
    pairs, lengths = _edges(d)
    sets = UnionFind(d.shape[0])
    deaths, tree = [], set()
    for rank, (i, j) in enumerate(pairs):
        if sets.union(int(i), int(j)):  # two components merge: one dies at this length
            deaths.append(float(lengths[rank]))
            tree.add(rank)
            if len(tree) == d.shape[0] - 1:
                break
    return deaths, tree


def h0_diagram(distances: Any) -> np.ndarray:
    """H0 persistence diagram of a distance matrix → (N', 2) bars ``(0, death)``, the last ``(0, inf)``.

    Bars of zero length (duplicate points) are dropped, as ripser does.
    """
    d = check_distance_matrix(distances)
    if d.shape[0] == 0:
        return np.zeros((0, 2))
    deaths, _ = _kruskal(d)
    bars = [(0.0, death) for death in sorted(deaths) if death > 0] + [(0.0, np.inf)]
    return np.array(bars, dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# H1: reducing the Vietoris–Rips boundary matrix over Z/2
# ----------------------------------------------------------------------------------------------


def enclosing_radius(d: np.ndarray) -> float:
    """``min_i max_j D[i, j]``: from this scale on the Rips complex is a cone (no holes)."""
    return float(np.min(np.max(d, axis=1))) if d.size else 0.0


def h1_diagram(distances: Any) -> np.ndarray:
    """H1 persistence diagram of a distance matrix → (K, 2) bars ``(birth, death)`` with death > birth.

    Builds every triangle up to the enclosing radius (N = 100 points: at most 161,700), so it
    is meant for clouds of up to about 100 points.
    """
    d = check_distance_matrix(distances)
    n = d.shape[0]
    if n < 3:
        return np.zeros((0, 2))
    radius = enclosing_radius(d)
    pairs, lengths = _edges(d)
    _, tree = _kruskal(d)

    # Row index of each edge: its filtration rank (tree edges get none: compression)
    rank = np.full((n, n), -1, dtype=np.int64)
    rank[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
    rank[pairs[:, 1], pairs[:, 0]] = np.arange(len(pairs))

    # Triangles {i < j < k} with value ≤ R, in filtration order (by value, ties by the latest edge)
    tri = np.array(list(combinations(range(n), 3)), dtype=np.int64)  # (T, 3)
    faces = np.stack([rank[tri[:, 0], tri[:, 1]], rank[tri[:, 0], tri[:, 2]], rank[tri[:, 1], tri[:, 2]]], axis=1)
    latest = faces.max(axis=1)  # (T,) the longest edge's rank: value(triangle) = lengths[latest]
    keep = lengths[latest] <= radius
    faces, latest = faces[keep], latest[keep]
    order = np.argsort(latest, kind="stable")
    faces, latest = faces[order], latest[order]

    reduced: dict[int, int] = {}  # low edge → the reduced column that has it as its lowest one
    bars = []
    for t in range(len(faces)):
        column = 0
        for e in faces[t]:
            if int(e) not in tree:
                column |= 1 << int(e)
        while column:
            low = column.bit_length() - 1
            if low not in reduced:
                reduced[low] = column  # edge `low` (a loop's birth) is killed by triangle t
                birth, death = lengths[low], lengths[latest[t]]
                if death > birth:
                    bars.append((float(birth), float(death)))
                break
            column ^= reduced[low]  # add the earlier column mod 2: its lowest one cancels ours
    bars.sort()
    return np.array(bars, dtype=np.float64).reshape(-1, 2)


def persistence_diagrams(distances: Any) -> list[np.ndarray]:
    """``[H0, H1]`` diagrams of a distance matrix, in ripser's layout (``ripser(D, distance_matrix=True)['dgms']``)."""
    return [h0_diagram(distances), h1_diagram(distances)]


# ----------------------------------------------------------------------------------------------
# The Hungarian algorithm and the Wasserstein-1 distance
# ----------------------------------------------------------------------------------------------


def hungarian(cost: Any) -> np.ndarray:
    """The minimum-cost assignment of a square (n, n) cost matrix → (n,) column of each row. O(n³).

    Kuhn–Munkres with potentials u (rows), v (columns) kept feasible, u[i] + v[j] ≤ C[i, j]; a
    cell with equality is "tight". Rows are added one at a time: from the new row, grow a tree
    of tight cells (a Dijkstra-like search on the reduced costs C[i, j] − u[i] − v[j]), each
    time raising the potentials by the smallest slack ``delta`` to make one more cell tight,
    until a free column is reached; then flip the assignment along the path. The sum of
    potentials equals the cost of the assignment, which is therefore optimal (LP duality).
    """
    c = np.asarray(to_host(cost), dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"the cost matrix must be square (n, n), got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("the cost matrix contains NaN or infinite values")
    n = c.shape[0]
    # 1-based arrays; column 0 is a virtual column holding the row being added
    u = np.zeros(n + 1)  # row potentials
    v = np.zeros(n + 1)  # column potentials
    row_of = np.zeros(n + 1, dtype=np.int64)  # row_of[j] = row assigned to column j (0 = none)
    way = np.zeros(n + 1, dtype=np.int64)  # way[j] = previous column on the path to j
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        slack = np.full(n + 1, np.inf)  # smallest reduced cost from the tree to each column
        used = np.zeros(n + 1, dtype=bool)  # columns in the tree
        while True:
            used[j0] = True
            i0 = row_of[j0]
            free = ~used[1:]
            reduced = c[i0 - 1] - u[i0] - v[1:]  # (n,) reduced costs from row i0
            better = free & (reduced < slack[1:])
            slack[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, slack[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[row_of[used]] += delta  # raise the tree's rows, lower its columns: tight cells stay tight
            v[used] -= delta
            slack[1:][free] -= delta
            j0 = j1
            if row_of[j0] == 0:  # a free column: augment
                break
        while j0:  # flip the path back to the virtual column
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    assignment = np.zeros(n, dtype=np.int64)
    assignment[row_of[1:] - 1] = np.arange(n)
    return assignment


def _finite_bars(diagram: Any, name: str) -> np.ndarray:
    """The finite bars of a diagram as (K, 2) float64; bars with infinite death are dropped."""
    x = np.asarray(to_host(diagram), dtype=np.float64)
    if x.size == 0:
        return np.zeros((0, 2))
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{name} must be a (K, 2) array of (birth, death) bars, got shape {x.shape}")
    if np.any(np.isnan(x)):
        raise ValueError(f"{name} contains NaN")
    x = x[np.isfinite(x[:, 1])]
    if not np.all(np.isfinite(x[:, 0])):
        raise ValueError(f"{name} has a bar with an infinite birth")
    return x


def wasserstein_matching(a: Any, b: Any, ground: str = "euclidean") -> tuple[float, list[tuple[int, int]]]:
    """W1 distance between diagrams a, b and its matching: pairs (i, j), j = -1 or i = -1 for the diagonal.

    ``ground``: ``"euclidean"`` (persim's) or ``"linf"``. Bars with infinite death are dropped.
    """
    if ground == "euclidean":
        to_diagonal = 1 / np.sqrt(2)  # distance from (b, d) to the diagonal = (d − b)/√2
    elif ground == "linf":
        to_diagonal = 1 / 2  # = (d − b)/2 in L∞
    else:
        raise ValueError(f"ground must be 'euclidean' or 'linf', got {ground!r}")
    p, q = _finite_bars(a, "the first diagram"), _finite_bars(b, "the second diagram")
    m, n = len(p), len(q)
    if m + n == 0:
        return 0.0, []
    diff = p[:, None, :] - q[None, :, :]  # (m, n, 2)
    point = np.sqrt((diff**2).sum(-1)) if ground == "euclidean" else np.abs(diff).max(-1)  # (m, n)
    cost = np.zeros((m + n, n + m))
    cost[:m, :n] = point
    cost[:m, n:] = (to_diagonal * (p[:, 1] - p[:, 0]))[:, None]  # a_i → the diagonal
    cost[m:, :n] = (to_diagonal * (q[:, 1] - q[:, 0]))[None, :]  # the diagonal → b_j
    columns = hungarian(cost)
    total = float(cost[np.arange(m + n), columns].sum())
    matching = []
    for i, j in enumerate(columns):
        ii, jj = (i if i < m else -1), (int(j) if j < n else -1)
        if ii != -1 or jj != -1:
            matching.append((ii, jj))
    return total, matching


def wasserstein(a: Any, b: Any, ground: str = "euclidean") -> float:
    """The Wasserstein-1 distance between two persistence diagrams (finite bars; see the module docstring)."""
    return wasserstein_matching(a, b, ground)[0]
