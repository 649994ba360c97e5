"""The HTML report of ``callmesh simulate --report``: one self-contained file.

No scripts, no fonts, no network: the charts are inline SVG drawn here from the JSON
document (:func:`callmesh.sim.results.summarize`), so the file opens anywhere, can be mailed,
and renders the same in a headless browser (the end-to-end test screenshots it). Charts, per
tenant: service level by interval (with its 95% band and the target), ASA by interval,
occupancy by team and interval, and the distribution of waits of answered contacts; then
the KPI tables.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["render_report"]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
_W, _H = 640, 260
_L, _R, _T, _B = 56, 150, 16, 40

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:16px 0 6px} .meta{color:#555;font-size:13px}
.charts{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0;border:1px solid #e4e4e4;padding:8px}
figcaption{font-size:13px;font-weight:600;margin-bottom:4px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
svg text{font-family:inherit;font-size:11px;fill:#333}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _est(e: dict[str, Any], digits: int = 1) -> str:
    if e.get("mean") is None:
        return "-"
    if e.get("halfWidth") is None:
        return _num(e["mean"], digits)
    return f"{e['mean']:.{digits}f} ± {e['halfWidth']:.{digits}f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for exp in range(-2, 9):
        for step in (1, 2, 2.5, 5):
            top = step * 10**exp
            if top >= value:
                return float(top)
    return value


def _line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    *,
    y_label: str,
    y_max: float | None = None,
    target: float | None = None,
) -> str:
    """Lines of means with shaded 95% bands, one per series, over interval labels."""
    n = len(labels)
    highs = [
        (e.get("high") if e.get("high") is not None else e.get("mean")) or 0.0
        for _, values in series
        for e in values
    ]
    top = y_max if y_max is not None else _nice_max(max([*highs, target or 0.0, 1e-9]))
    pw, ph = _W - _L - _R, _H - _T - _B

    def x(i: int) -> float:
        return _L + (pw * (i + 0.5) / n if n else 0)

    def y(v: float) -> float:
        return _T + ph * (1 - min(max(v, 0.0), top) / top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img">']
    for k in range(6):
        v = top * k / 5
        out.append(
            f'<line x1="{_L}" x2="{_L + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            f'<text x="{_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    every = max(1, n // 12)
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(
                f'<text x="{x(i):.1f}" y="{_T + ph + 16}" text-anchor="middle">{_esc(label)}</text>'
            )
    out.append(
        f'<text x="14" y="{_T + ph / 2:.1f}" transform="rotate(-90 14 {_T + ph / 2:.1f})"'
        f' text-anchor="middle">{_esc(y_label)}</text>'
    )
    out.append(
        f'<line x1="{_L}" x2="{_L}" y1="{_T}" y2="{_T + ph}" stroke="#999"/>'
        f'<line x1="{_L}" x2="{_L + pw}" y1="{_T + ph}" y2="{_T + ph}" stroke="#999"/>'
    )
    if target is not None:
        out.append(
            f'<line x1="{_L}" x2="{_L + pw}" y1="{y(target):.1f}" y2="{y(target):.1f}"'
            ' stroke="#444" stroke-dasharray="5,4"/>'
            f'<text x="{_L + pw - 4}" y="{y(target) - 4:.1f}" text-anchor="end">target {target:g}</text>'
        )
    for s, (name, values) in enumerate(series):
        color = _PALETTE[s % len(_PALETTE)]
        band_top = [(x(i), y(e["high"])) for i, e in enumerate(values) if e.get("high") is not None]
        band_low = [(x(i), y(e["low"])) for i, e in enumerate(values) if e.get("low") is not None]
        if len(band_top) > 1 and len(band_top) == len(band_low):
            pts = band_top + band_low[::-1]
            out.append(
                '<polygon points="'
                + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
                + f'" fill="{color}" fill-opacity="0.15" stroke="none"/>'
            )
        pts_line = [(x(i), y(e["mean"])) for i, e in enumerate(values) if e.get("mean") is not None]
        if pts_line:
            out.append(
                '<polyline points="'
                + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts_line)
                + f'" fill="none" stroke="{color}" stroke-width="2"/>'
            )
            for px, py in pts_line:
                out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.2" fill="{color}"/>')
        ly = _T + 14 + 16 * s
        out.append(
            f'<rect x="{_L + pw + 12}" y="{ly - 9}" width="12" height="4" fill="{color}"/>'
            f'<text x="{_L + pw + 28}" y="{ly - 4}">{_esc(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _bar_chart(labels: Sequence[str], values: Sequence[dict[str, Any]], *, y_label: str) -> str:
    """Bars of means with 95% whiskers."""
    n = len(labels)
    top = _nice_max(max([(e.get("high") or e.get("mean") or 0.0) for e in values] + [1e-9]))
    width = _W - _R + 60
    pw, ph = width - _L - 24, _H - _T - _B
    bw = pw / max(n, 1)

    def y(v: float) -> float:
        return _T + ph * (1 - min(max(v, 0.0), top) / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W - _R + 40}" height="{_H}" role="img">'
    ]
    for k in range(6):
        v = top * k / 5
        out.append(
            f'<line x1="{_L}" x2="{_L + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            f'<text x="{_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>'
        )
    for i, e in enumerate(values):
        mean = e.get("mean")
        if mean is None:
            continue
        x0 = _L + i * bw + 1
        out.append(
            f'<rect x="{x0:.1f}" y="{y(mean):.1f}" width="{max(bw - 2, 1):.1f}"'
            f' height="{_T + ph - y(mean):.1f}" fill="{_PALETTE[0]}"/>'
        )
        if e.get("low") is not None and e.get("high") is not None:
            cx = x0 + (bw - 2) / 2
            out.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(e["low"]):.1f}" y2="{y(e["high"]):.1f}"'
                ' stroke="#333"/>'
            )
    every = max(1, n // 10)
    for i, label in enumerate(labels):
        if i % every == 0:
            out.append(
                f'<text x="{_L + i * bw + bw / 2:.1f}" y="{_T + ph + 16}"'
                f' text-anchor="middle">{_esc(label)}</text>'
            )
    out.append(
        f'<text x="14" y="{_T + ph / 2:.1f}" transform="rotate(-90 14 {_T + ph / 2:.1f})"'
        f' text-anchor="middle">{_esc(y_label)}</text>'
        f'<line x1="{_L}" x2="{_L + pw}" y1="{_T + ph}" y2="{_T + ph}" stroke="#999"/>'
        "</svg>"
    )
    return "".join(out)


def _figure(caption: str, svg: str) -> str:
    return f"<figure><figcaption>{_esc(caption)}</figcaption>{svg}</figure>"


def _run_section(run: dict[str, Any]) -> str:
    day = run["day"]
    labels = day["intervals"]
    queues = run["queues"]
    parts = [
        f"<h2>Tenant {_esc(run['tenant'])}</h2>",
        f'<p class="meta">workload {_esc(run["workload"])}, {_esc(day["weekday"])}'
        f" {_esc(day['start'])}-{_esc(day['end'])}, intervals of {day['intervalMinutes']} min,"
        f" {run['replications']} replications, seed {run['seed']}; lines are means, bands"
        " the 95% confidence intervals.</p>",
        '<div class="charts">',
    ]
    targets = {q["serviceLevelTarget"]["percent"] for q in queues}
    parts.append(
        _figure(
            "Service level by interval (% answered within the queue's threshold)",
            _line_chart(
                labels,
                [
                    (
                        f"{q['name']} ({q['serviceLevelTarget']['seconds']} s)",
                        [iv["serviceLevelPercent"] for iv in q["intervals"]],
                    )
                    for q in queues
                ],
                y_label="SL %",
                y_max=100.0,
                target=next(iter(targets)) if len(targets) == 1 else None,
            ),
        )
    )
    parts.append(
        _figure(
            "Average speed of answer by interval (answered contacts)",
            _line_chart(
                labels,
                [(q["name"], [iv["asaSeconds"] for iv in q["intervals"]]) for q in queues],
                y_label="ASA s",
            ),
        )
    )
    parts.append(
        _figure(
            "Offered contacts by interval",
            _line_chart(
                labels,
                [(q["name"], [iv["offered"] for iv in q["intervals"]]) for q in queues],
                y_label="contacts",
            ),
        )
    )
    parts.append(
        _figure(
            "Occupancy by team and interval",
            _line_chart(
                labels,
                [(t["name"], t["occupancyPercentByInterval"]) for t in run["teams"]],
                y_label="occupancy %",
                y_max=100.0,
            ),
        )
    )
    for q in queues:
        hist = q["waitHistogram"]
        width = hist["binSeconds"]
        bins = len(hist["sharePercent"])
        blabels = [f"{i * width:g}" if i < bins - 1 else f"{i * width:g}+" for i in range(bins)]
        parts.append(
            _figure(
                f"Wait distribution of answered contacts, {q['name']} (bins of {width:g} s)",
                _bar_chart(blabels, hist["sharePercent"], y_label="% of answered"),
            )
        )
    parts.append("</div>")
    head = (
        "<tr><th>queue</th><th>offered</th><th>answered</th><th>abandoned %</th>"
        "<th>SL % (target)</th><th>SL excl. short abandons %</th><th>ASA s</th><th>AHT s</th>"
        "<th>longest wait s</th><th>P(wait) %</th><th>RONA</th><th>overflowed</th>"
        "<th>Erlang SL %</th><th>Erlang ASA s</th></tr>"
    )
    rows = []
    for q in queues:
        t = q["total"]
        erl = t.get("erlang") or {}
        target = q["serviceLevelTarget"]
        rows.append(
            f"<tr><td>{_esc(q['name'])}</td><td>{_est(t['offered'], 0)}</td>"
            f"<td>{_est(t['answered'], 0)}</td><td>{_est(t['abandonedPercent'])}</td>"
            f"<td>{_est(t['serviceLevelPercent'])} ({target['percent']:g}/{target['seconds']} s)</td>"
            f"<td>{_est(t['serviceLevelExclShortAbandonsPercent'])}</td>"
            f"<td>{_est(t['asaSeconds'])}</td><td>{_est(t['ahtSeconds'])}</td>"
            f"<td>{_est(t['longestWaitSeconds'], 0)}</td><td>{_est(t['waitProbabilityPercent'])}</td>"
            f"<td>{_est(t['rona'], 0)}</td><td>{_est(t['overflowed'], 0)}</td>"
            f"<td>{_num(erl.get('serviceLevelPercent'))}</td><td>{_num(erl.get('asaSeconds'))}</td></tr>"
        )
    parts.append("<h3>Queues, whole day</h3><table>" + head + "".join(rows) + "</table>")
    for q in queues:
        irows = []
        for iv in q["intervals"]:
            erl = iv.get("erlang") or {}
            irows.append(
                f"<tr><td>{_esc(iv['start'])}</td><td>{_est(iv['offered'], 0)}</td>"
                f"<td>{_est(iv['abandonedPercent'])}</td><td>{_est(iv['serviceLevelPercent'])}</td>"
                f"<td>{_est(iv['asaSeconds'])}</td><td>{_est(iv['ahtSeconds'])}</td>"
                f"<td>{_est(iv['longestWaitSeconds'], 0)}</td>"
                f"<td>{_num(erl.get('serviceLevelPercent'))}</td><td>{_num(erl.get('asaSeconds'))}</td></tr>"
            )
        parts.append(
            f"<h3>Queue {_esc(q['name'])} by interval</h3><table><tr><th>interval</th>"
            "<th>offered</th><th>abandoned %</th><th>SL %</th><th>ASA s</th><th>AHT s</th>"
            "<th>longest wait s</th><th>Erlang SL %</th><th>Erlang ASA s</th></tr>"
            + "".join(irows)
            + "</table>"
        )
    frows = "".join(
        f"<tr><td>{_esc(f['name'])}</td><td>{_est(f['calls'], 0)}</td>"
        + "".join(f"<td>{_est(e)}</td>" for e in f["outcomesPercent"].values())
        + f"<td>{_est(f['ivrSecondsMean'])}</td></tr>"
        for f in run["flows"]
    )
    if frows:
        kinds = next(iter(run["flows"]))["outcomesPercent"]
        parts.append(
            "<h3>IVR flows (outcomes, % of calls)</h3><table><tr><th>flow</th><th>calls</th>"
            + "".join(f"<th>{_esc(k)}</th>" for k in kinds)
            + f"<th>seconds in IVR</th></tr>{frows}</table>"
        )
    routing = run["routing"]
    rrows = "".join(
        f"<tr><td>{_esc(name)}</td><td>{_est(est)}</td></tr>"
        for name, est in routing["decisionsPercent"].items()
    )
    parts.append(
        "<h3>Routing decisions</h3><table><tr><th>decided by</th><th>% of offers</th></tr>"
        f"{rrows}<tr><td>fallbacks (a plugin missing, failed or invalid)</td>"
        f"<td>{_est(routing['fallbackPercent'])}</td></tr></table>"
    )
    campaigns = run.get("campaigns") or []
    if campaigns:
        crows = "".join(
            f"<tr><td>{_esc(c['name'])}</td><td>{_esc(c['mode'])}</td><td>{_esc(c['queue'])}</td>"
            f"<td>{c['agents']}</td><td>{_est(c['occupancyPercent'])}</td>"
            f"<td>{_est(c['abandonedPercent'], 2)}</td><td>{c['maxAbandonPercent']:g}"
            f" ({_esc(c['abandonPeriod'])}, {c['complianceWindowSeconds']:g} s)</td>"
            f"<td>{_est(c['reachedPerAgentHour'], 2)}</td><td>{_est(c['dialled'], 0)}</td>"
            f"<td>{_est(c['answered'], 0)}</td><td>{_est(c['abandoned'], 0)}</td>"
            f"<td>{_est(c['reached'], 0)}</td><td>{_est(c['transferred'], 0)}</td></tr>"
            for c in campaigns
        )
        parts.append(
            "<h3>Outbound campaigns (the real dialer engine on the same agents)</h3>"
            '<div class="charts">'
            + _figure(
                "Campaign agents' occupancy (%, 95% interval)",
                _bar_chart(
                    [c["name"] for c in campaigns],
                    [c["occupancyPercent"] for c in campaigns],
                    y_label="occupancy %",
                ),
            )
            + _figure(
                "Abandoned % of calls answered by a person (95% interval)",
                _bar_chart(
                    [c["name"] for c in campaigns],
                    [c["abandonedPercent"] for c in campaigns],
                    y_label="abandoned %",
                ),
            )
            + "</div><table><tr><th>campaign</th><th>mode</th><th>queue</th><th>agents</th>"
            "<th>occupancy %</th><th>abandoned %</th><th>cap % (period, window)</th>"
            "<th>reached per agent-hour</th><th>dialled</th><th>answered by a person</th>"
            "<th>abandoned</th><th>reached an agent</th><th>pressed transfer</th></tr>"
            f"{crows}</table>"
        )
    arows = "".join(
        f"<tr><td>{_esc(a['id'])}</td><td>{_esc(', '.join(a['teams']))}</td>"
        f"<td>{_est(a['occupancyPercent'])}</td><td>{_est(a['contactsHandled'], 0)}</td></tr>"
        for a in run["agents"]
    )
    parts.append(
        "<h3>Agents</h3><table><tr><th>agent</th><th>teams</th><th>occupancy %</th>"
        f"<th>contacts handled</th></tr>{arows}</table>"
    )
    checks = run["checks"]
    parts.append(
        f'<p class="meta">{checks["contactsSimulated"]:,} contacts simulated; Little\'s law'
        f" max relative error {checks['littleLawMaxRelativeError']:.1e}; flow conservation"
        f" violations {checks['flowConservationViolations']}.</p>"
    )
    return "".join(parts)


def render_report(document: dict[str, Any]) -> str:
    """The report of a ``callmesh simulate`` JSON document, as one HTML string."""
    body = "".join(_run_section(run) for run in document["runs"])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>callmesh simulate report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>callmesh simulate</h1>"
        f'<p class="meta">schema version {document["schemaVersion"]}, seed {document["seed"]},'
        f" {document['replications']} replications per tenant.</p>"
        f"{body}</body></html>\n"
    )
