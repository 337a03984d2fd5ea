#!/usr/bin/env python3
"""The nextest filterset of one test lane: test binaries dealt to lanes by their measured time.

Usage: lanes.py WEIGHTS LANE LANES

WEIGHTS is a file of `binary-id seconds` lines (`#` comments), the seconds each test binary
took in a measured run (scripts/test writes them to target/test-suites.txt). Binaries are dealt
largest first, each to the lane with the least time so far (LPT). A hash partition splits
every suite between the lanes instead, and most suites run alone on their stack, so the lanes
it gives differ by a minute or more. The last lane also runs every binary the file does not
list, so a new test file is never left out. Prints the filterset for `cargo nextest run -E`.
"""
import sys


def deal(weights, lanes):
    loads = [0.0] * lanes
    dealt = [[] for _ in range(lanes)]
    for binary, seconds in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
        i = min(range(lanes), key=lambda n: (loads[n], n))
        loads[i] += seconds
        dealt[i].append(binary)
    return dealt, loads


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__.strip().splitlines()[2])
    weights = {}
    for n, line in enumerate(open(argv[1]), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            sys.exit(f"{argv[1]}:{n}: expected 'binary-id seconds', got {line!r}")
        weights[parts[0]] = float(parts[1])
    lane, lanes = int(argv[2]), int(argv[3])
    if not 1 <= lane <= lanes:
        sys.exit(f"lane {lane} is not in 1..{lanes}")
    dealt, loads = deal(weights, lanes)
    ids = lambda bs: " | ".join(f"binary_id({b})" for b in bs)
    if lane < lanes:
        print(ids(dealt[lane - 1]) or "none()")
    else:
        # Its own listed binaries are in no other lane, so "not the others'" includes them.
        others = [b for d in dealt[:-1] for b in d]
        print(f"not ({ids(others)})" if others else "all()")
    print(f"lane {lane}/{lanes}: {len(dealt[lane - 1])} listed binaries, {loads[lane - 1]:.0f} s measured", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
