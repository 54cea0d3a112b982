"""Grant evaluation benchmark: `GrantIndex.allows` against a hand-written linear evaluator.

A store with many principals and grants (default 500 principals x 40 grants over
20 environments x 50 services, prod protected). Each check asks whether a principal
may do an action on an address. Measured uncached (the index's result cache is
cleared before every check: the cost of a first request) and cached (a workflow
asking for the same credentials again). The floor, written by hand here, is the
plainest correct evaluator: the principal's grants in a list, each checked segment
by segment with fnmatch, with the same implication and protected-environment rules.
Target: the index is not slower than the floor uncached, and cached checks stay
under a microsecond or two.

    python bench/grants.py [--principals 500] [--grants-each 40] [--checks 200000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from fnmatch import fnmatchcase

from credwarden.access.grants import Grant, GrantIndex

ACTIONS = ("describe", "use", "read", "write", "rotate", "admin")
IMPLIED = {"admin": set(ACTIONS), "read": {"read", "use", "describe"}}


def make_grants(principals: int, each: int, rng: random.Random) -> list[Grant]:
    envs = [f"env{i}" for i in range(19)] + ["prod"]
    services = [f"svc{i}" for i in range(50)]
    grants = []
    for p in range(principals):
        for g in range(each):
            env = rng.choice([*envs, "*"])
            svc = rng.choice([*services, "*"])
            name = rng.choice(["*", "*", f"n{rng.randrange(20)}"])
            actions = frozenset(rng.sample(ACTIONS[:5], rng.randint(1, 2)))
            grants.append(Grant(f"{p}-{g}", f"p{p}", f"{env}/{svc}/{name}", actions))
    return grants


class Floor:
    """The plainest correct evaluator, by hand."""

    def __init__(self, grants: list[Grant], protected: set[str]) -> None:
        self.by_principal: dict[str, list[tuple[list[str], set[str]]]] = {}
        self.protected = protected
        for g in grants:
            acts = set(g.actions)
            for a in g.actions:
                acts |= IMPLIED.get(a, set())
            acts.add("describe")
            self.by_principal.setdefault(g.principal, []).append((g.pattern.split("/"), acts))

    def allows(self, principal: str, action: str, address: str) -> bool:
        parts = address.split("/")
        for pattern, acts in self.by_principal.get(principal, ()):
            if action not in acts:
                continue
            if parts[0] in self.protected and ("*" in pattern[0] or "?" in pattern[0]):
                continue
            if all(fnmatchcase(a, p) for a, p in zip(parts, pattern, strict=True)):
                return True
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--principals", type=int, default=500)
    ap.add_argument("--grants-each", type=int, default=40)
    ap.add_argument("--checks", type=int, default=200_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = random.Random(7)
    grants = make_grants(args.principals, args.grants_each, rng)
    protected = {"prod"}
    t = time.perf_counter()
    index = GrantIndex(grants, protected)
    build_ms = (time.perf_counter() - t) * 1000
    floor = Floor(grants, protected)
    queries = [
        (
            f"p{rng.randrange(args.principals)}",
            rng.choice(ACTIONS[:5]),
            f"{rng.choice(['prod', *(f'env{i}' for i in range(19))])}/svc{rng.randrange(50)}"
            f"/n{rng.randrange(20)}",
        )
        for _ in range(args.checks)
    ]
    mismatches = sum(index.allows(*q) != floor.allows(*q) for q in queries[:20000])

    hot = queries[:1000] * (len(queries) // 1000)  # the same credentials asked for again

    def timed(fn: object, clear: bool, qs: list[tuple[str, str, str]] = queries) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for q in qs:
                if clear:
                    index._cache.clear()
                fn(*q)  # type: ignore[operator]
            best = min(best, time.perf_counter() - t0)
        return best / len(qs) * 1e6

    clear_cost = timed(lambda *q: None, clear=True)  # the loop and the cache clear alone
    uncached = timed(index.allows, clear=True) - clear_cost
    cached = timed(index.allows, False, hot) - timed(lambda *q: None, False, hot)
    floor_us = timed(floor.allows, clear=False) - timed(lambda *q: None, clear=False)
    result = {
        "principals": args.principals,
        "grants": len(grants),
        "index_build_ms": build_ms,
        "index_uncached_us": uncached,
        "index_cached_us": cached,
        "floor_us": floor_us,
        "floor_over_index_uncached": floor_us / uncached,
        "agreement_mismatches": mismatches,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"grant checks: {len(grants):,} grants of {args.principals:,} principals, prod protected")
    print(f"  GrantIndex.allows, uncached : {uncached:6.2f} us/check  (built in {build_ms:.0f} ms)")
    print(f"  GrantIndex.allows, cached   : {cached:6.2f} us/check")
    print(f"  hand-written linear floor   : {floor_us:6.2f} us/check")
    print(f"  ratio floor/index (uncached): {floor_us / uncached:.2f}x   (target >= 1)")
    print(f"  answers differing from the floor: {mismatches} of 20,000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
