"""Token buckets per API key: how many requests a call system may make, and how many SMS.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_minute``; a request takes one,
or is told how long until there is one (``Retry-After``). In memory, per process, like the
deep-link throttle: with several instances behind a load balancer each has its own buckets, so
a key gets at most that many times the limit. At most ``max_keys`` keys are remembered (the
least recently seen are forgotten first, which only ever gives a forgotten key a full bucket).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyBuckets:
    """One token bucket per key."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        self.rate = rate_per_minute / 60.0  # tokens a second
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def take(self, key: int) -> float:
        """Take a token for ``key``: 0.0 if there was one, else the seconds until there is."""
        now = self.clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


def retry_after(seconds: float) -> int:
    """The ``Retry-After`` header's whole seconds: never 0 for a refusal."""
    return max(1, math.ceil(seconds))
