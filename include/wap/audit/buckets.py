"""Fingerprints by key bucket: the keyed diff of two large tables joins only the buckets of keys whose rows differ.

A typical cycle changes few rows (a day's rows appended, a few late corrections), yet a full outer join of both
tables costs about four scans of them. Instead, one pass over each side computes, per bucket of keys, the row count
and the order-independent content hash (the sum of the row hashes, as the fast path's); a bucket whose figures
agree on both sides holds the same rows, so it contributes no added, removed or changed row, and only the rows of
the other buckets are joined. The totals of all buckets are the tables' counts and content hashes.

Buckets are key ranges of equal width where the key is one integer or date column (a day's new keys and the
corrections of recent keys then fall in a few adjacent buckets, and the join of those reads only the storage blocks
of their range where the table is stored in key order), and a hash of the key otherwise. The bucket count follows
the table size, read from table statistics (``count(*)``, ``min``, ``max``: metadata, no scan): about
:data:`BUCKET_ROWS` rows a bucket, at most :data:`MAX_BUCKETS`.

Nothing here decides correctness on its own: rows of a key fall in the same bucket on both sides (the bucket is a
function of the key alone, with the same bounds on both sides), so every differing row is in a differing bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

#: Rows per bucket the bucket count aims at: at 10M rows, 10,000 buckets cost about 1.2x the floor in one pass.
BUCKET_ROWS = 1_000

#: Most buckets a pass computes: more groups make the pass slower than the join it saves where rows are not stored
#: in key order (100,000 buckets of 10M rows: 2.3x the floor).
MAX_BUCKETS = 10_000

#: Tables below this size are diffed as before (the per-side pass, then one join if they differ): the bucket pass
#: would save nothing worth its statement. Two tables the catalog counts below it get no table figures either
#: (``DiffEngine._reads_figures``).
MIN_ROWS = 100_000

#: The share of buckets above which the join is not restricted to the differing buckets: most rows are joined
#: anyway, and one join without a bucket filter costs less than a join that computes every row's bucket.
JOINED_SHARE = 0.25

#: Buckets on each side of the middle of the key range that the probe compares first (1.6% of 10,000 buckets).
PROBE_BUCKETS = 80

#: Keys sampled from the build for the probe of tables not stored in key order, and the share of them whose rows
#: differ from which the changes count as spread (with 1,000 rows a bucket, 1% of rows changed at random leave
#: almost no bucket alike). Reading the rows of 64 keys scattered over a table costs about 0.15x the floor (256 keys:
#: 0.6x); 2 of 64 keys differ with a chance of 93% where 6.5% of the rows changed.
SAMPLED_KEYS = 64
SAMPLED_SHARE = 0.03

#: The share of the key range over which the differing sampled keys must spread for the changes to count as spread
#: (range buckets): a day's load differs in the newest few percent of keys (the bench's: 3%); two keys differing at
#: random lie more than a twentieth of the range apart with a chance of 90%.
SAMPLED_SPREAD = 0.05

#: About as many keys of an integer key range (every :func:`subset_step`-th), whose rows the per-side pass of two
#: tables of equal counts in no order fingerprints apart (``DiffEngine._side_pass``): where those rows differ, the
#: changes are likely spread, and the whole join follows without the bucket pass. A share p of rows changed at random
#: makes them differ with a chance of 1 - (1 - p)^128: 1.3% for 0.01% (a few corrections), 12% for 0.1%, 72% for 1%
#: (where 1,000 rows a bucket leave few buckets alike anyway).
SUBSET_KEYS = 128

#: Integer keys (in absolute value) below which the bucket pass also names the one differing row of a bucket
#: (``Dialect.decoding_sums``: a key times 16 bits of a hash must fit a BIGINT).
DECODED_KEYS_BELOW = 2**46
#: The bucket of rows whose (range) key is NULL.
NULL_BUCKET = -1


@dataclass(frozen=True)
class BucketPlan:
    """How a keyed pair is cut into buckets: ``kind`` ``range`` (``low`` and ``width`` in key units: integers, or
    days for a date) or ``hash`` (``count`` buckets of the key's hash)."""

    kind: str
    count: int
    range_type: str | None = None  # "integer" | "date" for range buckets
    low: Any = None
    width: int = 1

    def bucket_of(self, key: Any) -> int:
        """The range bucket of a key value (as the dialect's SQL computes it)."""
        offset = (_as_date(key) - self.low).days if self.range_type == "date" else int(key) - self.low
        return offset // self.width

    def key_bounds(self, buckets: list[int]) -> tuple[Any, Any] | None:
        """The smallest and greatest key of the non-NULL ``buckets`` of a range plan (None: hash, or none)."""
        ranged = [bucket for bucket in buckets if bucket != NULL_BUCKET]
        if self.kind != "range" or not ranged:
            return None
        first, last = min(ranged) * self.width, (max(ranged) + 1) * self.width - 1
        if self.range_type == "date":
            return _add_days(self.low, first), _add_days(self.low, last)
        return self.low + first, self.low + last


def bucket_count(rows: int, bucket_rows: int = BUCKET_ROWS, max_buckets: int = MAX_BUCKETS) -> int:
    """Buckets for a table of ``rows`` rows (the larger side): one per ``bucket_rows`` rows, 1 to ``max_buckets``."""
    return max(1, min(max_buckets, rows // max(1, bucket_rows)))


def plan_buckets(range_type: str | None, low: Any, high: Any, count: int) -> BucketPlan:
    """Range buckets over ``low .. high`` (the key's min and max over both sides) for an integer or date key with
    values, hash buckets otherwise."""
    if range_type is None or low is None or high is None:
        return BucketPlan("hash", count)
    if range_type == "date":
        low, high = _as_date(low), _as_date(high)
        span = (high - low).days + 1
    else:
        low, high = int(low), int(high)
        span = high - low + 1
    width = max(1, math.ceil(span / count))
    return BucketPlan("range", math.ceil(span / width), range_type, low, width)


def joined_limit(count: int, share: float = JOINED_SHARE) -> int:
    """The most differing buckets of ``count`` to which the join is restricted (at least one)."""
    return max(1, int(count * share))


def restricted(buckets: list[int], count: int, share: float = JOINED_SHARE) -> bool:
    """Whether the join is restricted to the differing ``buckets`` (a few of ``count``) rather than left whole."""
    return share > 0 and len(buckets) <= joined_limit(count, share)


def subset_step(plan: BucketPlan, keys: int = SUBSET_KEYS) -> int:
    """The step between the keys of the per-side pass's subset over a range plan's keys: a power of two (a bit mask
    tells its multiples: a modulo cost the pass 0.1x the floor at 10M rows) near a span of :data:`SUBSET_KEYS` keys,
    at least 64 (a small table's subset stays small)."""
    return 1 << max(6, (plan.count * plan.width // keys).bit_length() - 1)


def probe_buckets(count: int, half: int = PROBE_BUCKETS) -> tuple[int, int]:
    """The first and last bucket of the probe: ``2 * half`` buckets around the middle of ``count``."""
    middle = count // 2
    return max(0, middle - half), min(count - 1, middle + half - 1)


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _add_days(day: date, days: int) -> date:
    return date.fromordinal(day.toordinal() + days)
