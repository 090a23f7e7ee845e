"""Which candidates to keep: the fewest indexes that serve the most query time.

A candidate serves a query when the planner uses it, it cuts the query's cost by at least
``min_gain`` and it comes within ``NEAR_BEST`` of the lowest cost any candidate gives the
query.  Greedily, the candidate that takes the most time-weighted cost off the queries no kept
index serves yet is kept first (ties: the smaller index), until none serves a query left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .candidates import Candidate

NEAR_BEST = 2.0  # a plan within this factor of the query's best candidate plan serves it as well


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
    lowest: dict[int, float] = {}  # query -> its lowest cost with any one candidate
    for t in trials:
        if t.used:
            lowest[t.query] = min(lowest.get(t.query, t.after), t.after)
    served: set[int] = set()  # the queries a kept index serves already
    kept: list[Kept] = []
    while True:
        options = []
        for candidate, tried in by_candidate.items():
            # A query served once needs no second index: a covering twin of a kept index, or one
            # more that shaves a little more off a cost already cut by min_gain, would cost every
            # write for little.  And an index serves a query only when it comes near the best
            # any candidate does for it: one index that barely serves two queries must not take
            # the place of the one that serves the second well.
            serves = [t for t in tried if t.gain >= min_gain and t.query not in served
                      and t.after <= NEAR_BEST * lowest[t.query]]
            value = sum(weights[t.query] * t.gain for t in serves)
            if value > 0:
                options.append((value, candidate, serves))
        if not options:
            return kept
        # Within 2% of the best value the plans are as good as equal: the smaller index wins
        # (a partial index over the composite one that serves the same query).
        top = max(v for v, _, _ in options)
        _, pick, serves = min((o for o in options if o[0] >= 0.98 * top), key=lambda o: sizes[o[1]])
        served.update(t.query for t in serves)
        kept.append(Kept(pick, sizes[pick], how[pick], serves))
        del by_candidate[pick]


def best_gain(trials: list[Trial], candidate: Candidate) -> float:
    return max((t.gain for t in trials if t.candidate == candidate), default=0.0)
