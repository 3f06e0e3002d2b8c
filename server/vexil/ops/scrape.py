"""Reading a vexil server's `/metrics` back: sums, ratios and quantiles the way the alert rules
compute them, for `vexil status` and `vexil ops check`.

A scrape holds cumulative values since the process started; `Scrape.since(earlier)` gives the
increase between two scrapes, so a command can judge "the last N seconds" as the rules judge a
rate window, or the whole uptime when asked for a single reading.
"""

from __future__ import annotations

import math
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from vexil.errors import Unavailable

Labels = Mapping[str, str]
Where = Callable[[Labels], bool]


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    """The samples of one `/metrics` response."""

    def __init__(self, samples: Iterable[Sample]) -> None:
        self.samples = list(samples)
        self._by_name: dict[str, list[Sample]] = {}
        for sample in self.samples:
            self._by_name.setdefault(sample.name, []).append(sample)

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls(
            Sample(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        )

    def series(self, name: str, where: Where | None = None) -> list[Sample]:
        return [s for s in self._by_name.get(name, []) if where is None or where(s.labels)]

    def has(self, name: str) -> bool:
        return name in self._by_name

    def sum(self, name: str, where: Where | None = None) -> float:
        return sum(s.value for s in self.series(name, where))

    def max(self, name: str, where: Where | None = None) -> float | None:
        values = [s.value for s in self.series(name, where)]
        return max(values) if values else None

    def label_values(self, name: str, label: str) -> set[str]:
        return {s.labels.get(label, "") for s in self.series(name)}

    def quantile(self, q: float, histogram: str, where: Where | None = None) -> float | None:
        """`histogram_quantile(q, sum by (le) (...))` over the matching series; None with no data."""
        buckets: dict[float, float] = {}
        for sample in self.series(histogram + "_bucket", where):
            bound = float(sample.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
        return quantile(q, buckets)

    def since(self, earlier: Scrape) -> Scrape:
        """Counters and histograms as increases since `earlier`; gauges as they are now."""
        before = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in earlier.samples}
        out = []
        for s in self.samples:
            if _cumulative(s.name):
                previous = before.get((s.name, tuple(sorted(s.labels.items()))), 0.0)
                # A restarted process starts from zero again: take its value as the increase.
                value = s.value - previous if s.value >= previous else s.value
                out.append(Sample(s.name, s.labels, value))
            else:
                out.append(s)
        return Scrape(out)


def _cumulative(name: str) -> bool:
    return name.endswith(("_total", "_bucket", "_count", "_sum"))


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' histogram_quantile on cumulative bucket counts keyed by upper bound."""
    if not buckets:
        return None
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0 or not math.isinf(bounds[-1]):
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the largest finite bucket: its bound, as Prometheus does
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the error it is here, never followed: urllib would send the
    request's `Authorization` header on to wherever the answer points (`http://` included), so a
    misconfigured or hostile endpoint could collect the operator's token in plaintext."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch(
    url: str,
    timeout: float = 5.0,
    headers: Mapping[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Scrape:
    """GET a /metrics URL (outside the local profile `headers` carry the credentials it needs;
    `https` with `context`'s trust); `Unavailable` when the server cannot be reached, or does
    not answer at this URL itself (a redirect is reported, not followed: see `_NoRedirects`)."""
    opener = urllib.request.build_opener(_NoRedirects(), urllib.request.HTTPSHandler(context=context))
    try:
        request = urllib.request.Request(url, headers=dict(headers or {}))
        with opener.open(request, timeout=timeout) as response:
            return Scrape.parse(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        exc.close()
        if 300 <= exc.code < 400:
            where = exc.headers.get("Location", "elsewhere")
            raise Unavailable(
                f"cannot read {url}: it redirects ({exc.code}) to {where}, which vexil does not follow"
                " (it would send the token there): give the metrics' own URL (--http-url, VEXIL_HTTP_URL)"
            ) from None
        raise Unavailable(f"cannot read {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unavailable(f"cannot read {url}: {reason}") from None
