"""Which candidates to keep: the fewest indexes that serve the most query time.

A candidate serves a query when the planner uses it and it cuts the query's cost by at least
``min_gain`` below the best the indexes already kept give it.  Greedily, the candidate that
takes the most time-weighted cost off the queries it serves is kept first (ties: the smaller
index), until none serves a query any more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .candidates import Candidate


@dataclass(frozen=True)
class Trial:
    """The planner's cost of query ``query`` (its index) before and with ``candidate``."""

    candidate: Candidate
    query: int
    before: float
    after: float
    used: bool

    @property
    def gain(self) -> float:
        return 1.0 - self.after / self.before if self.used and self.before > 0 else 0.0


@dataclass
class Kept:
    candidate: Candidate
    size: int
    how: str
    serves: list[Trial] = field(default_factory=list)


def choose(trials: list[Trial], weights: list[float], sizes: dict[Candidate, int], min_gain: float,
           how: dict[Candidate, str]) -> list[Kept]:
    by_candidate: dict[Candidate, list[Trial]] = {}
    for t in trials:
        by_candidate.setdefault(t.candidate, []).append(t)
    best: dict[int, float] = {}  # query -> its lowest cost with the indexes kept so far (as a share of before)
    kept: list[Kept] = []
    while True:
        options = []
        for candidate, tried in by_candidate.items():
            serves = [t for t in tried if t.gain >= min_gain
                      and (1.0 - t.gain) <= best.get(t.query, 1.0) * (1.0 - min_gain)]
            value = sum(weights[t.query] * (best.get(t.query, 1.0) - (1.0 - t.gain)) for t in serves)
            if value > 0:
                options.append((value, candidate, serves))
        if not options:
            return kept
        # Within 2% of the best value the plans are as good as equal: the smaller index wins
        # (a partial index over the composite one that serves the same query).
        top = max(v for v, _, _ in options)
        _, pick, serves = min((o for o in options if o[0] >= 0.98 * top), key=lambda o: sizes[o[1]])
        for t in serves:
            best[t.query] = 1.0 - t.gain
        kept.append(Kept(pick, sizes[pick], how[pick], serves))
        del by_candidate[pick]


def best_gain(trials: list[Trial], candidate: Candidate) -> float:
    return max((t.gain for t in trials if t.candidate == candidate), default=0.0)
