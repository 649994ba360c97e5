"""Erlang B, Erlang C (M/M/n) and Erlang A (M/M/n+M, Palm's model) performance measures.

Everything is in seconds. A queue's load is a :class:`QueueLoad`: Poisson arrivals at
``arrival_rate`` contacts per second, exponential handling time with mean ``aht`` seconds
and, for Erlang A, exponential patience with mean ``patience`` seconds (abandonment rate
``θ = 1 / patience``); ``patience=None`` means nobody abandons, which is Erlang C.

KPI definitions (the same in :class:`Performance`, in ``docs/staffing.md`` and in
``callmesh staff --output json``), for a contact arriving in steady state:

- ``p_wait``: P(not answered on arrival), i.e. all agents busy (``P{W > 0}``).
- ``p_abandon``: P(hangs up before being answered) (0 for Erlang C).
- ``asa``: mean wait of **answered** contacts only, ``E[W | answered]``. Abandoners are
  left out; ``mean_wait`` is the mean time in queue over all contacts (abandoners counted
  until they hang up), which is what some tools report as "ASA".
- ``service_level``: P(answered within ``answer_time``) over **offered** contacts: a
  contact that abandons, at any time, counts as a miss.
- ``service_level_answered``: answered within ``answer_time`` over answered contacts.
- ``service_level_excl_short_abandons``: answered within ``answer_time`` over offered
  contacts minus those that abandoned within ``short_abandon_time`` (a common contact-center
  convention: very short abandons are treated as misdials).
- ``occupancy``: fraction of agent time spent handling contacts, carried load / agents.
- ``queue_length``: mean number of contacts waiting (Little: ``arrival_rate * mean_wait``).

Numerics: Erlang B by its recursion ``B(k) = a B(k-1) / (k + a B(k-1))``, which stays in
[0, 1] (no factorials, no overflow at any number of agents); Erlang A by the exact
formulas of Palm's model (Garnett, Mandelbaum & Reiman 2002; Mandelbaum & Zeltyn, "The
M/M/n+G queue: summary of performance measures", and Zeltyn & Mandelbaum 2005, "Call
centers with impatient customers"), with the incomplete gamma function evaluated in log
space (:mod:`callmesh.wfm.special`) and the remaining sums taken around their largest
term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from callmesh.wfm.special import digamma, log_gamma_p_ratio

__all__ = [
    "Performance",
    "QueueLoad",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "erlang_c_probability",
    "performance",
]

Model = Literal["erlang-c", "erlang-a"]


def _finite(name: str, value: float, *, minimum: float, strict: bool, hint: str) -> None:
    ok = math.isfinite(value) and (value > minimum if strict else value >= minimum)
    if not ok:
        rel = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {rel} {minimum:g}, got {value!r}: {hint}")


@dataclass(frozen=True)
class QueueLoad:
    """The offered load of one queue: Poisson arrivals, exponential handling and patience.

    Attributes:
        arrival_rate: contacts offered per second (``λ``); 0 means no traffic.
        aht: mean handle time in seconds (talk + hold + wrap-up), ``1/μ``.
        patience: mean time in seconds a caller waits before hanging up, ``1/θ``
            (exponential); ``None`` means callers never abandon (Erlang C).
    """

    arrival_rate: float
    aht: float
    patience: float | None = None

    def __post_init__(self) -> None:
        _finite(
            "arrival_rate",
            self.arrival_rate,
            minimum=0.0,
            strict=False,
            hint="give contacts per second, e.g. 100/3600 for 100 calls an hour",
        )
        _finite("aht", self.aht, minimum=0.0, strict=True, hint="give seconds, e.g. 180")
        if self.patience is not None:
            _finite(
                "patience",
                self.patience,
                minimum=0.0,
                strict=True,
                hint="give the mean patience in seconds, or None for callers who never hang up",
            )

    @classmethod
    def per_hour(
        cls, calls_per_hour: float, aht: float, patience: float | None = None
    ) -> QueueLoad:
        """Build a load from an hourly arrival rate (the unit most forecasts use)."""
        _finite("calls_per_hour", calls_per_hour, minimum=0.0, strict=False, hint="e.g. 600")
        return cls(calls_per_hour / 3600.0, aht, patience)

    @property
    def traffic(self) -> float:
        """Offered traffic in Erlangs, ``a = λ · AHT``: agents kept busy if all are answered."""
        return self.arrival_rate * self.aht

    @property
    def model(self) -> Model:
        """``"erlang-a"`` when callers abandon (finite patience), else ``"erlang-c"``."""
        return "erlang-c" if self.patience is None else "erlang-a"


@dataclass(frozen=True)
class Performance:
    """Steady-state KPIs of one queue with a given number of agents (see module docstring).

    Times are in seconds, probabilities and ratios in [0, 1]. ``stable`` is False only for
    Erlang C with ``traffic >= agents``: the queue then grows without bound, so
    ``p_wait = 1``, ``asa = mean_wait = queue_length = inf``, all service levels are 0 and
    occupancy is 1 (Erlang A is always stable: callers leave).
    """

    model: Model
    agents: int
    traffic: float
    answer_time: float
    short_abandon_time: float
    p_wait: float
    p_abandon: float
    asa: float
    mean_wait: float
    service_level: float
    service_level_answered: float
    service_level_excl_short_abandons: float
    occupancy: float
    queue_length: float
    stable: bool

    def as_dict(self) -> dict[str, float | int | str | bool | None]:
        """A flat JSON-ready dict; infinite values become ``None``."""
        out: dict[str, float | int | str | bool | None] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            out[name] = value
        return out


def erlang_b(agents: int, traffic: float) -> float:
    """Erlang B blocking probability ``B(n, a)`` of an M/M/n/n loss system.

    Computed with the recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``: every
    intermediate value lies in [0, 1], so it is stable for any number of agents (values below
    ~1e-308 underflow to 0.0). ``traffic`` may be fractional.
    """
    _check_agents(agents)
    _finite("traffic", traffic, minimum=0.0, strict=False, hint="Erlangs = arrival rate x AHT")
    b = 1.0
    for k in range(1, agents + 1):
        ab = traffic * b
        b = ab / (k + ab)
    return b


def erlang_c_probability(agents: int, traffic: float) -> float:
    """Erlang C probability of waiting ``C(n, a) = n B / (n - a (1 - B))`` for ``a < n``.

    Returns 1.0 when ``traffic >= agents`` (unstable: every contact waits).
    """
    _check_agents(agents)
    if traffic >= agents:
        return 1.0
    return _c_from_b(agents, traffic, erlang_b(agents, traffic))


def _c_from_b(agents: int, traffic: float, b: float) -> float:
    return agents * b / (agents - traffic * (1.0 - b))


def _check_agents(agents: int) -> None:
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 0:
        raise ValueError(f"agents must be a whole number >= 0, got {agents!r}")


def _check_times(answer_time: float, short_abandon_time: float) -> None:
    _finite("answer_time", answer_time, minimum=0.0, strict=False, hint="seconds, e.g. 20")
    _finite(
        "short_abandon_time", short_abandon_time, minimum=0.0, strict=False, hint="seconds, e.g. 5"
    )


def _idle(load: QueueLoad, agents: int, answer_time: float, short: float) -> Performance:
    """No traffic: nobody waits, nobody abandons, agents are idle."""
    return Performance(
        load.model,
        agents,
        0.0,
        answer_time,
        short,
        0.0,
        0.0,
        0.0,
        0.0,
        1.0,
        1.0,
        1.0,
        0.0,
        0.0,
        True,
    )


def erlang_c(
    load: QueueLoad,
    agents: int,
    answer_time: float = 20.0,
    short_abandon_time: float = 5.0,
    *,
    blocking: float | None = None,
) -> Performance:
    """Erlang C (M/M/n, nobody abandons) KPIs; ``load.patience`` is ignored.

    ``ASA = C · AHT / (n - a)``, ``SL(T) = 1 - C · exp(-(n - a) T / AHT)``, occupancy
    ``a / n``. All service-level variants coincide because nobody abandons. ``blocking``
    lets a caller that already holds ``erlang_b(agents, traffic)`` skip recomputing it.
    """
    _check_agents(agents)
    _check_times(answer_time, short_abandon_time)
    a = load.traffic
    if a == 0.0:
        return _idle(QueueLoad(0.0, load.aht), agents, answer_time, short_abandon_time)
    if a >= agents:
        inf = math.inf
        return Performance(
            "erlang-c", agents, a, answer_time, short_abandon_time,
            1.0, 0.0, inf, inf, 0.0, 0.0, 0.0, 1.0, inf, False,
        )  # fmt: skip
    b = erlang_b(agents, a) if blocking is None else blocking
    c = _c_from_b(agents, a, b)
    spare = agents - a
    asa = c * load.aht / spare
    sl = 1.0 - c * math.exp(-spare * answer_time / load.aht)
    return Performance(
        "erlang-c", agents, a, answer_time, short_abandon_time,
        c, 0.0, asa, asa, sl, sl, sl, a / agents, load.arrival_rate * asa, True,
    )  # fmt: skip


# The queue sums below stop once a term is this small relative to the running total.
_SERIES_EPS = 1e-17
# Below this many leading terms the harmonic sum is added directly, above via digamma.
_DIRECT_HARMONIC = 10_000


def erlang_a(
    load: QueueLoad,
    agents: int,
    answer_time: float = 20.0,
    short_abandon_time: float = 5.0,
    *,
    blocking: float | None = None,
) -> Performance:
    """Erlang A (M/M/n+M, Palm's model) KPIs; needs ``load.patience``.

    With ``a = λ/μ``, ``s = nμ/θ``, ``y = λ/θ`` and ``E = B(n, a)`` (Erlang B), the
    stationary probability of ``n + k`` contacts in system is ``π_n r_k`` with
    ``r_k = y^k / ((s+1) ... (s+k))`` and ``A = Σ r_k``, so

    - ``P(wait) = A E / (1 - E + A E)``;
    - a contact that finds ``k`` waiting ahead is answered with probability
      ``s / (s + k + 1)``, abandons otherwise, and if answered waited on average
      ``Σ_{i=1}^{k+1} 1 / (nμ + iθ)`` (an exact telescoping of the hypoexponential wait),
      which gives ``P(abandon)`` and ``ASA`` over answered contacts;
    - given it waits, its virtual wait ``V`` has ``P(V > t | V > 0) = P(s, y e^{-θt}) /
      P(s, y)`` (regularized lower incomplete gamma), so answered within ``t`` is
      ``P(answered | wait) · (1 - P(s+1, y e^{-θt}) / P(s+1, y))`` (Mandelbaum & Zeltyn).
    """
    if load.patience is None:
        raise ValueError("erlang_a needs load.patience (mean seconds before hanging up)")
    _check_agents(agents)
    _check_times(answer_time, short_abandon_time)
    lam = load.arrival_rate
    a = load.traffic
    if lam == 0.0:
        return _idle(load, agents, answer_time, short_abandon_time)
    if agents == 0:
        inf = math.inf
        return Performance(
            "erlang-a", 0, a, answer_time, short_abandon_time,
            1.0, 1.0, inf, load.patience, 0.0, 0.0, 0.0, 1.0, lam * load.patience, True,
        )  # fmt: skip
    mu = 1.0 / load.aht
    theta = 1.0 / load.patience
    n_mu = agents * mu
    s = n_mu / theta
    y = lam / theta
    e = erlang_b(agents, a) if blocking is None else blocking

    sums = _queue_sums(s, y, n_mu, theta)
    # P(wait) = A E / (1 - E + A E), A = exp(log_a).
    if e == 0.0:
        p_wait = 0.0
    else:
        x = math.log1p(-e) - math.log(e) - sums.log_a
        p_wait = math.exp(-x) / (1.0 + math.exp(-x)) if x > 0 else 1.0 / (1.0 + math.exp(x))
    ab_w = sums.abandon / sums.total  # P(abandon | wait)
    sr_w = sums.served / sums.total  # P(answered | wait)
    p_abandon = p_wait * ab_w
    p_answered = (1.0 - p_wait) + p_wait * sr_w
    asa = p_wait * (sums.served_wait / sums.total) / p_answered if p_answered > 0 else math.inf
    mean_wait = p_abandon / theta  # Little's law on the queue: θ E[Lq] = λ P(abandon)

    def not_yet_answered(t: float) -> float:
        """P(V > t | answered, waited) = P(s+1, y e^{-θt}) / P(s+1, y)."""
        if t == 0.0:
            return 1.0
        return math.exp(log_gamma_p_ratio(s + 1.0, y * math.exp(-theta * t), y))

    answered_within = (1.0 - p_wait) + p_wait * sr_w * (1.0 - not_yet_answered(answer_time))
    # Abandoned within u, given it waits: 1 - P(W > u | wait) - P(answered within u | wait).
    u = short_abandon_time
    if u == 0.0:
        short_ab = 0.0
    else:
        still_waiting = math.exp(-theta * u + log_gamma_p_ratio(s, y * math.exp(-theta * u), y))
        answered_by_u = sr_w * (1.0 - not_yet_answered(u))
        short_ab = p_wait * min(ab_w, max(0.0, 1.0 - still_waiting - answered_by_u))
    carried = a * (1.0 - p_abandon)
    return Performance(
        model="erlang-a",
        agents=agents,
        traffic=a,
        answer_time=answer_time,
        short_abandon_time=u,
        p_wait=p_wait,
        p_abandon=p_abandon,
        asa=asa,
        mean_wait=mean_wait,
        service_level=_clamp(answered_within),
        service_level_answered=_clamp(answered_within / p_answered) if p_answered > 0 else 0.0,
        service_level_excl_short_abandons=_clamp(answered_within / (1.0 - short_ab)),
        occupancy=_clamp(carried / agents),
        queue_length=lam * mean_wait,
        stable=True,
    )


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class _QueueSums:
    """Sums over k (contacts waiting ahead) of ``r_k`` scaled by ``1 / r_mode``."""

    log_a: float  # log A = log Σ r_k
    total: float  # Σ t_k
    abandon: float  # Σ t_k (k+1)/(s+k+1)
    served: float  # Σ t_k s/(s+k+1)
    served_wait: float  # Σ t_k s/(s+k+1) Σ_{i=1}^{k+1} 1/(nμ+iθ)


def _queue_sums(s: float, y: float, n_mu: float, theta: float) -> _QueueSums:
    """Sum the queue-length terms around their largest one, so nothing overflows.

    ``r_k`` rises while ``y > s + k`` and falls after, so the largest is at
    ``k* = max(0, floor(y - s))``; terms are ``t_k = r_k / r_k*`` and the sums stop where
    terms drop below ``1e-17`` of the total on either side.
    """
    k_mode = max(0, math.floor(y - s))
    log_r_mode = 0.0
    if k_mode > 0:
        log_r_mode = k_mode * math.log(y) - (math.lgamma(s + k_mode + 1.0) - math.lgamma(s + 1.0))
    # Terms below the mode, walking down: t_{k-1} = t_k (s + k) / y.
    below: list[float] = []
    t = 1.0
    running = 1.0
    k = k_mode
    while k > 0:
        t *= (s + k) / y
        k -= 1
        below.append(t)
        running += t
        if t <= running * _SERIES_EPS:
            break
    k_lo = k_mode - len(below)
    terms = below[::-1]
    terms.append(1.0)
    # Terms above the mode: t_{k+1} = t_k y / (s + k + 1).
    t = 1.0
    k = k_mode
    while True:
        t *= y / (s + k + 1.0)
        k += 1
        terms.append(t)
        running += t
        if t <= running * _SERIES_EPS:
            break
    # h_k = Σ_{i=1}^{k+1} 1/(nμ + iθ), the mean wait of an answered contact with k ahead.
    if k_lo + 1 <= _DIRECT_HARMONIC:
        h = math.fsum(1.0 / (n_mu + i * theta) for i in range(1, k_lo + 2))
    else:
        h = (digamma(s + k_lo + 2.0) - digamma(s + 1.0)) / theta
    total = abandon = served = served_wait = 0.0
    k = k_lo
    for t in terms:
        denom = s + k + 1.0
        sr = t * s / denom
        total += t
        abandon += t * (k + 1.0) / denom
        served += sr
        served_wait += sr * h
        k += 1
        h += 1.0 / (n_mu + (k + 1) * theta)
    return _QueueSums(log_r_mode + math.log(total), total, abandon, served, served_wait)


def performance(
    load: QueueLoad, agents: int, answer_time: float = 20.0, short_abandon_time: float = 5.0
) -> Performance:
    """KPIs of ``load`` with ``agents`` agents: Erlang A if callers abandon, else Erlang C."""
    if load.patience is None:
        return erlang_c(load, agents, answer_time, short_abandon_time)
    return erlang_a(load, agents, answer_time, short_abandon_time)
