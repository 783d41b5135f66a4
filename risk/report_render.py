"""The model report rendered: charts drawn with matplotlib, a multi-page PDF (PdfPages) and one HTML page.

Pure functions from the content of risk/report.py to bytes or text; nothing is read or written here. The HTML
is self-contained: its charts are inline PNGs (data: URIs), its styles inline, no script and no other asset.
"""
from __future__ import annotations

import base64
import io
import textwrap
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from risk.report import SECTIONS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INK, MUTED, LINE, ACCENT, HIGH, MID, LOW = "#1d2433", "#5b6475", "#dde1e8", "#2456a6", "#b42318", "#c4600c", "#2e7d4f"
A4 = (8.27, 11.69)
ROW_INCHES = 0.2  # a table row in the PDF, unless the table must squeeze into its space
STYLE = {"pdf.fonttype": 42, "font.size": 8.5, "axes.edgecolor": LINE, "axes.labelcolor": INK, "axes.titlesize": 9.5,
         "axes.titleweight": "bold", "xtick.color": MUTED, "ytick.color": MUTED, "axes.spines.top": False,
         "axes.spines.right": False, "font.family": "DejaVu Sans"}
LABELS = ["stayed (0)", "exited (1)"]
SMALL_SAMPLE = "With {n} test rows every figure here is uncertain; read the intervals, not only the values."


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def interval(metric: dict) -> str:
    return "-" if metric["low"] is None else f"[{metric['low']:.3f}, {metric['high']:.3f}]"


def latest_timing(timings: list[dict]) -> str:
    """The newest diagnostics timings as one line."""
    if not timings or timings[-1]["ingestion_seconds"] is None:
        return "No timings recorded yet."
    t = timings[-1]
    return (f"Latest ({when(t['created_at'])}, version {t['model_version']}): ingestion "
            f"{t['ingestion_seconds'] * 1000:.1f} ms, training {t['training_seconds'] * 1000:.1f} ms "
            f"(median of {t['repeats']} runs)")


def when(stamp: str | None) -> str:
    return "-" if not stamp else stamp[:16].replace("T", " ") + (" UTC" if stamp.endswith("+00:00") else "")


# ---- charts, each drawn on an Axes ---------------------------------------------------------------------------

def draw_confusion(ax: object, counts: list[list[int]]) -> None:
    ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(1, max(map(max, counts))))
    for i in range(2):
        for j in range(2):
            dark = counts[i][j] > max(map(max, counts)) / 2
            ax.text(j, i, str(counts[i][j]), ha="center", va="center", fontsize=13, fontweight="bold",
                    color="white" if dark else INK)
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=LABELS, yticklabels=LABELS, xlabel="predicted",
           ylabel="actual", title="Confusion matrix (test data)")


def draw_calibration(ax: object, bins: list[dict]) -> None:
    ax.plot([0, 1], [0, 1], color=LINE, linestyle="--", label="perfectly calibrated")
    if bins:
        sizes = [30 + 12 * b["n"] for b in bins]
        ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], color=ACCENT, linewidth=1.5)
        ax.scatter([b["predicted"] for b in bins], [b["observed"] for b in bins], s=sizes, color=ACCENT,
                   zorder=3, label="test data (dot size: rows)")
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="predicted probability of leaving",
           ylabel="share that left", title="Calibration (reliability)")
    ax.legend(loc="upper left", frameon=False, fontsize=7.5)


def draw_scores(ax: object, scores: list[dict], deployments: list[dict]) -> None:
    test = [(i, s["f1"]) for i, s in enumerate(scores) if s["dataset"] == "testdata"]
    new = [(i, s["f1"]) for i, s in enumerate(scores) if s["dataset"] != "testdata"]
    if test:
        ax.plot(*zip(*test, strict=True), marker="o", color=ACCENT, label="F1 on the test data, per trained model")
    if new:
        ax.scatter(*zip(*new, strict=True), color=MID, marker="D", zorder=3, label="F1 of the kept model on new rows")
    every = max(1, len(scores) // 10)
    ax.set_xticks(range(0, len(scores), every), [when(s["created_at"])[5:16] for s in scores][::every], rotation=20,
                  ha="right")
    ax.set(ylim=(0, 1.05), ylabel="F1", title=f"Scores recorded in the ledger ({len(deployments)} deployment(s))")
    ax.grid(axis="y", color=LINE)
    ax.legend(loc="lower left", frameon=False, fontsize=7.5)


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def draw_drift(ax: object, drift: list[dict]) -> None:
    names = sorted({n for d in drift for n in d["features"]})
    x = range(len(drift))
    for name, color in zip(names, (ACCENT, MID, LOW, HIGH), strict=False):
        ax.plot(x, [_or_nan(d["features"].get(name, {}).get("effect")) for d in drift], marker="o", color=color,
                label=name.replace("_", " "))
    ax.set_xticks(list(x), [f"#{d['id']} {d['verdict']}" for d in drift], rotation=20, ha="right")
    ax.set(ylabel="shift (Wasserstein / sd)", title="Data drift per feature at each decision")
    ax.grid(axis="y", color=LINE)
    if names:
        ax.legend(loc="upper left", frameon=False, fontsize=7.5)
    else:
        ax.text(0.5, 0.5, "no feature tests recorded yet", transform=ax.transAxes, ha="center", color=MUTED)


def draw_timings(ax: object, timings: list[dict]) -> None:
    x = range(len(timings))
    for key, color, label in (("ingestion_seconds", ACCENT, "ingestion"), ("training_seconds", MID, "training")):
        ax.plot(x, [t[key] * 1000 if t[key] is not None else float("nan") for t in timings], marker="o",
                color=color, label=label)
    ax.set_xticks(list(x), [when(t["created_at"])[5:16] for t in timings], rotation=20, ha="right")
    ax.set(ylabel="median ms", title="Stage timings at each diagnostics run", ylim=(0, None))
    ax.grid(axis="y", color=LINE)
    ax.legend(loc="lower right", frameon=False, fontsize=7.5)


def draw_profit(ax: object, money: dict | None) -> None:
    """The expected profit of calling the first k clients of the list, with capacity (dashed), the recommended
    count (solid) and the most profitable count (a dot) marked."""
    if not money or len(money["curve"]) < 2:
        ax.axis("off")
        ax.text(0.5, 0.5, "No profit curve: no current clients ranked.", ha="center", va="center", color=MUTED)
        return
    calls, profit = [p["calls"] for p in money["curve"]], [p["profit"] for p in money["curve"]]
    ax.axhline(0, color=MUTED, linewidth=0.8)
    ax.plot(calls, profit, color=ACCENT, linewidth=1.8)
    ax.axvline(min(money["capacity"], calls[-1]), color=MID, linestyle="--", linewidth=1.4,
               label=f"capacity {money['capacity']}")
    if money["recommended_calls"] != money["capacity"]:
        ax.axvline(money["recommended_calls"], color=LOW, linewidth=1.4,
                   label=f"recommended {money['recommended_calls']}")
    best = money["best_calls"]
    ax.scatter([best], [profit[best]], color=LOW, zorder=3, label=f"most profitable {best}")
    ax.set(xlabel="calls, the riskiest client first", ylabel="expected profit", title="Expected profit of the calls")
    ax.grid(axis="y", color=LINE)
    ax.legend(loc="upper left", frameon=False, fontsize=7.5)


CHARTS = {
    "confusion": (lambda ax, c: draw_confusion(ax, c["confusion"]), (4.2, 3.6)),
    "calibration": (lambda ax, c: draw_calibration(ax, c["calibration"]), (4.2, 3.6)),
    "scores": (lambda ax, c: draw_scores(ax, c["scores"], c["deployments"]), (8.0, 3.0)),
    "drift": (lambda ax, c: draw_drift(ax, c["drift"]), (8.0, 3.0)),
    "timings": (lambda ax, c: draw_timings(ax, c["timings"]), (8.0, 2.8)),
    "profit": (lambda ax, c: draw_profit(ax, c["retention"]["economics"]), (8.0, 3.0)),
}


def png(content: dict, chart: str, dpi: int = 110) -> bytes:
    draw, size = CHARTS[chart]
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=size, dpi=dpi, layout="constrained")
        draw(figure.add_subplot(), content)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


# ---- the retention loop in words (the PDF and the HTML say the same) -------------------------------------------
EFFECT_GROUPS = (("called", "Assigned to be called"), ("holdout", "Holdout (not called)"),
                 ("contacted", "Actually reached (a hint: not randomized)"))


def _rate(group: dict) -> str:
    rate = "-" if group["leave_rate"] is None else f"{group['leave_rate']:.1f}%"
    return f"{group['left']} of {group['clients']} left ({rate})"


def power_line(pooled: dict) -> str:
    """What the data can detect so far and how long until a 10-point effect is detectable."""
    detect = ("no fall the holdout's leave rate allows is detectable yet" if pooled["detectable_points"] is None else
              f"the smallest detectable fall is {pooled['detectable_points']:.1f} points (80% power, 95% level)")
    months = pooled["months_for_10_points"]
    ten = ("a 10-point effect cannot be measured at today's sizes" if months is None else
           "a 10-point effect is already detectable" if months == 0 else
           f"{months} more month(s) of lists at today's sizes detect a 10-point effect")
    return f"{detect.capitalize()}; {ten}."


def effect_lines(retention: dict) -> list[str]:
    """The pooled effect of calling: the counts, then the difference with its interval, the verdict and saves per
    100 calls, or why there is too little data (never a bare number)."""
    effect = retention["effect"]
    if effect is None:
        return [f"No effect of calling yet: {retention['effect_note']}."]
    pooled = effect["pooled"]
    lines = [f"Over {effect['judged_lists']} judged list(s): " + "; ".join(
        f"{label}: {_rate(pooled[key])}" for key, label in EFFECT_GROUPS) + "."]
    if pooled["note"]:
        return [*lines, f"Too little data to say whether calls help: {pooled['note']}."]
    itt, saves = pooled["intention_to_treat"], pooled["saves_per_100_calls"]
    lines.append(f"Called minus holdout: {itt['difference']:+.2f} points (95% interval {itt['low']:+.2f} to "
                 f"{itt['high']:+.2f}): {pooled['verdict']}. Saves per 100 calls: {saves['estimate']:.2f} (95% "
                 f"interval {saves['low']:.2f} to {saves['high']:.2f}).")
    if pooled["controls_contacted"]:
        lines.append(f"{pooled['controls_contacted']} holdout client(s) were called anyway: that dilutes the effect.")
    return [*lines, power_line(pooled)]


def effect_rows(effect: dict | None) -> list[list[str]]:
    """Each judged list shown on its own: when, version, the two groups' leavers, the difference and verdict."""
    def difference(e: dict) -> str:
        itt = e["intention_to_treat"]
        return f"{itt['difference']:+.2f} ({itt['low']:+.2f} to {itt['high']:+.2f})"

    return [[when(e["created_at"]), e["model_version"], f"{e['called']['left']} of {e['called']['clients']}",
             f"{e['holdout']['left']} of {e['holdout']['clients']}",
             "too little data" if e["note"] else difference(e), "" if e["note"] else e["verdict"]]
            for e in (effect or {}).get("lists", [])]


def economics_lines(money: dict | None, population: int) -> list[str]:
    """How many calls pay, as /risk's economics says: the recommended calls and the curve's landmarks."""
    if not money:
        return ["No ranking of the current clients: no profit curve."]
    share = (f"the model card's profit-optimal share {money['share']:.1%} of the {population} current clients is "
             f"{money['profit_optimal_calls']} calls" if money["share"] is not None else money["note"])
    settings = money["settings"]
    accept = settings["accept_alpha"] / (settings["accept_alpha"] + settings["accept_beta"])
    return [f"Recommended calls: {money['recommended_calls']} (capacity {money['capacity']}; {share}).",
            f"Expected profit at capacity: {money['at_capacity']:,.2f}; most profitable: {money['best_calls']} calls "
            f"({money['curve'][money['best_calls']]['profit']:,.2f}).",
            f"A kept client is worth {settings['client_value']:,.0f}, the offer costs {settings['offer_cost']:,.0f}, a"
            f" call {settings['contact_cost']:,.0f}; {accept:.0%} of leavers accept the offer on average."]


def outcome_rows(outcomes: list[dict]) -> list[list[str]]:
    """Each measured list: its hit rate, and the hit rate expected (95% interval) beside the one realized on the
    same clients (the holdout where there is one)."""
    def expected(o: dict) -> str:
        e = o["expected"]
        return "-" if not e else f"{e['rate']:.0%} ({e['low']:.0%}-{e['high']:.0%})"

    return [[when(o["created_at"]), o["model_version"], f"{o['hit_rate']:.0%} of {o['followed']}",
             "holdout" if o["realized"]["group"] == "control" else "list", expected(o),
             "-" if o["realized"]["rate"] is None else
             f"{o['realized']['rate']:.0%} ({o['realized']['left']} of {o['realized']['followed']})",
             "outside" if o["outside"] else ""] for o in outcomes]


EFFECT_HEADER = ["list", "version", "called: left", "holdout: left", "difference, points (95%)", "verdict"]
OUTCOME_HEADER = ["list", "version", "hit rate", "judged on", "expected (95%)", "realized", ""]


# ---- the PDF ---------------------------------------------------------------------------------------------------

def _table(figure: Figure, rect: tuple, header: list[str], rows: list[list[str]], widths: list[float]) -> None:
    ax = figure.add_axes(rect)
    ax.axis("off")
    if not rows:
        ax.text(0, 1, "(none recorded)", va="top", color=MUTED)
        return
    table = ax.table(cellText=rows, colLabels=header, colWidths=widths, loc="upper left", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    inches = rect[3] * A4[1]
    for (r, _), cell in table.get_celld().items():
        cell.PAD = 0.03  # matplotlib pads 10% of the column's width by default: wide columns look indented
        cell.set_edgecolor(LINE)
        cell.set_height(min(ROW_INCHES, inches / (len(rows) + 1)) / inches)
        if r == 0:
            cell.set_facecolor("#eef1f6")
            cell.set_text_props(fontweight="bold", color=INK)


def _table_at(figure: Figure, top: float, most: float, header: list[str], rows: list[list[str]],
              widths: list[float]) -> float:
    """A table hanging from height `top`, as tall as its rows need (at most `most`); returns its bottom."""
    height = min(most, max(len(rows) + 1, 2) * ROW_INCHES / A4[1])
    _table(figure, (0.06, top - height, 0.88, height), header, rows, widths)
    return top - height


def _lines(figure: Figure, y: float, text: str, width: int = 130, **style: object) -> float:
    """`text` wrapped at `width` characters from height `y` down; returns the height below the last line."""
    for line in textwrap.wrap(text, width):
        figure.text(0.06, y, line, **{"fontsize": 7.5, "color": MUTED, **style})
        y -= 0.016
    return y


def _heading(figure: Figure, y: float, title: str, note: str = "") -> None:
    figure.text(0.06, y, title, fontsize=12, fontweight="bold", color=INK)
    if note:
        _lines(figure, y - 0.018, note, 150)


def _page(content: dict, number: int) -> Figure:
    figure = Figure(figsize=A4)
    figure.patches.append(matplotlib.patches.Rectangle((0, 0.955), 1, 0.045, transform=figure.transFigure,
                                                       color=INK))
    figure.text(0.06, 0.972, f"Client attrition model · version {content['version']['label']}", color="white",
                fontsize=11, fontweight="bold")
    figure.text(0.94, 0.972, f"generated {when(content['generated_at'])}", color="#c9cfdb", fontsize=8, ha="right")
    figure.text(0.5, 0.02, f"page {number}", color=MUTED, fontsize=7.5, ha="center")
    return figure


def capacity_rows(content: dict) -> list[list[str]]:
    """The metrics table's rows for the call capacity: precision and lift in the top k, test and out of fold."""
    test, cv = content.get("at_capacity"), (content.get("cv") or {}).get("at_capacity")
    if not test or not test["k"]:
        return []

    def ci(low_high: list[float] | None) -> str:
        return f"[{low_high[0]:.3f}, {low_high[1]:.3f}]" if low_high else "-"

    return [[f"Precision in top {test['k']}", fmt(test["precision"]), ci(test["precision_ci95"]),
             f"{fmt(cv['precision'])} (top {cv['k']})" if cv and cv["k"] else "-"],
            [f"Lift in top {test['k']}", fmt(test["lift"]), ci(test["lift_ci95"]),
             fmt(cv["lift"]) if cv and cv["k"] else "-"]]


def calibration_line(content: dict) -> str:
    scores = content.get("calibration_scores") or {}
    if scores.get("brier") is None:
        return ""
    return (f"Brier score {scores['brier']:.3f}, expected calibration error {scores['ece']:.3f} (over the"
            f" {scores['bins']} bins).")


def _summary_page(content: dict) -> Figure:
    figure = _page(content, 1)
    v, m, cv = content["version"], content["metrics"], content["cv"]
    _heading(figure, 0.915, SECTIONS[0])
    facts = [f"Deployed {when(v['created_at'])}; F1 at deployment {fmt(v['score'], 4)}; trained on {v['rows']} rows.",
             f"Test data: {m['n']} rows ({m['positives']} left). Threshold {m['threshold']}.",
             f"Data: {content['lineage']['ingested_rows']} rows ingested from {content['lineage']['ingested_files']} "
             f"file(s); {content['lineage']['rejected_rows']} row(s) and {content['lineage']['rejected_files']} "
             "file(s) rejected."]
    for i, line in enumerate(facts):
        figure.text(0.06, 0.89 - i * 0.018, line, fontsize=8.5, color=INK)
    _heading(figure, 0.82, SECTIONS[2], f"{int(m['confidence'] * 100)}% percentile bootstrap intervals over the "
             "test rows; cross-validated figures from the model card. Top k: the call capacity scaled to the rows.")
    cv_value = {"f1": f"{fmt(cv['f1'])} ± {fmt(cv['f1_se'])}", "precision": fmt(cv["precision"]),
                "recall": fmt(cv["recall"]), "auc": "-"} if cv else {}
    rows = [[name.upper() if name == "auc" else name.capitalize(), fmt(m[name]["value"]), interval(m[name]),
             cv_value.get(name, "-")] for name in ("f1", "precision", "recall", "auc")]
    if cv:
        rows.append(["Log-loss", "-", "-", f"{fmt(cv['log_loss'])} ± {fmt(cv['log_loss_se'])}"])
    rows += capacity_rows(content)
    _table(figure, (0.06, 0.62, 0.88, 0.17), ["metric", "test data", "95% interval",
                                              f"cross-validated ({cv['folds']} folds, n={cv['n']})" if cv else
                                              "cross-validated"], rows, [0.2, 0.2, 0.3, 0.3])
    _heading(figure, 0.59, f"{SECTIONS[3]} and {SECTIONS[4].lower()}")
    draw_confusion(figure.add_axes((0.15, 0.3, 0.32, 0.25)), content["confusion"])
    draw_calibration(figure.add_axes((0.6, 0.3, 0.34, 0.25)), content["calibration"])
    y = _lines(figure, 0.22, SECTIONS[3] + ": " + " · ".join(
        f"actually {a}, predicted {p}: {content['confusion'][i][j]}" for i, a in enumerate(("stayed", "exited"))
        for j, p in enumerate(("stayed", "exited"))) + ".")
    _lines(figure, y - 0.004, SECTIONS[4] + " by bin of predicted probability: " + "; ".join(
        f"{b['bin']}: predicted {b['predicted']:.2f}, observed {b['observed']:.2f} (n={b['n']})"
        for b in content["calibration"]) + ". " + calibration_line(content) + " "
        + SMALL_SAMPLE.format(n=content["metrics"]["n"]))
    return figure


def _reasons(content: dict, shown: int = 8) -> str:
    """The `shown` most frequent rejection reasons with their rows, then how many more reasons and rows."""
    listed, beyond = content["rejections"][:shown], content["rejections"][shown:]
    rest = content.get("more_rejections") or {"reasons": 0, "rows": 0}
    text = " | ".join(f"{r['reason']} ({r['rows']})" for r in listed) or "none"
    more, rows = rest["reasons"] + len(beyond), rest["rows"] + sum(r["rows"] for r in beyond)
    return f"{text} | and {more} more reason(s) ({rows} rows)" if more else text


def _data_page(content: dict) -> Figure:
    figure = _page(content, 2)
    lin = content["lineage"]
    _heading(figure, 0.915, SECTIONS[1], f"Every file the ledger has seen; ✓ marks the files this model was trained "
             f"on. Totals: {lin['ingested_rows']} rows ingested, {lin['rejected_rows']} rows rejected.")
    rows = [[f["name"][:40], f["status"], str(f["rows"]), str(f["rejected_rows"]), "✓" if f["in_model"] else "",
             when(f["seen_at"]), textwrap.shorten(f["reason"], 40) or "-"] for f in lin["files"]]
    bottom = _table_at(figure, 0.88, 0.4, ["file", "status", "rows", "rejected", "model", "seen", "reason"], rows,
                       [0.22, 0.1, 0.07, 0.1, 0.07, 0.18, 0.26])
    y = _lines(figure, bottom - 0.025, f"Rejected rows by reason: {_reasons(content)}", 150, color=INK)
    _heading(figure, y - 0.035, SECTIONS[7], "Missing values and ranges of the ingested data (finaldata.csv).")
    rows = [[q["column"], f"{q['missing']:.1%}", fmt(q.get("min"), 0), fmt(q.get("max"), 0), fmt(q.get("mean"), 1),
             fmt(q.get("median"), 1)] for q in content["quality"]]
    _table_at(figure, y - 0.07, 0.2, ["column", "missing", "min", "max", "mean", "median"], rows,
              [0.3, 0.14, 0.14, 0.14, 0.14, 0.14])
    return figure


def _history_page(content: dict) -> Figure:
    figure = _page(content, 3)
    _heading(figure, 0.915, SECTIONS[5], "F1 of each scored model, and each decision's per-feature shift.")
    draw_scores(figure.add_axes((0.1, 0.68, 0.84, 0.19)), content["scores"], content["deployments"])
    draw_drift(figure.add_axes((0.1, 0.42, 0.84, 0.19)), content["drift"])
    d = content["decision"]
    _heading(figure, 0.33, SECTIONS[6])
    if not d["found"]:
        figure.text(0.06, 0.305, d["summary"], fontsize=8.5, color=INK)
        return figure
    lines = [f"{when(d['created_at'])}: {d['verdict']} by {d['method']} -> {d['action']}",
             f"Why: {d['reason'] or '-'}", f"Files: {', '.join(d['files']) or '-'}"]
    if d["challenger"]:
        lines.append(f"Challenger: {d['challenger']}")
    y = 0.305
    for line in lines:
        y = _lines(figure, y, line, 125, fontsize=8, color=INK) - 0.002
    rows = [[t["name"], textwrap.shorten(t["test"], 34, placeholder="…"), str(t["n"]), fmt(t["statistic"]),
             fmt(t["p_adjusted"]), fmt(t["effect"]), "*" if t["flagged"] else ""] for t in d["tests"]]
    if rows:
        _table(figure, (0.06, 0.06, 0.88, y - 0.08), ["test", "method", "n", "statistic", "p (Holm)", "effect", ""],
               rows, [0.22, 0.3, 0.07, 0.11, 0.11, 0.11, 0.05])
    return figure


def _operations_page(content: dict) -> Figure:
    figure = _page(content, 4)
    _heading(figure, 0.915, SECTIONS[8], "Median seconds over repeated scratch runs, stored in the ledger by every "
             "diagnostics run; dependency versions against requirements.txt and the package index.")
    draw_timings(figure.add_axes((0.1, 0.75, 0.84, 0.12)), content["timings"])
    figure.text(0.06, 0.685, latest_timing(content["timings"]), fontsize=8, color=INK)
    rows = [[d["name"], d["pinned"], d["installed"], d["latest"], d.get("status", "")]
            for d in content["dependencies"]]
    _table(figure, (0.06, 0.45, 0.88, 0.22), ["package", "pinned", "installed", "latest", "status"], rows,
           [0.3, 0.15, 0.15, 0.15, 0.25])
    _heading(figure, 0.4, SECTIONS[9])
    rows = [[str(d["version"]), d.get("action") or "deploy", when(d["created_at"]), fmt(d["score"], 4),
             textwrap.shorten(d.get("reason") or "-", 50)] for d in content["deployments"][-20:]]
    _table(figure, (0.06, 0.07, 0.88, 0.3), ["version", "action", "when", "F1", "reason"], rows,
           [0.12, 0.14, 0.26, 0.12, 0.36])
    return figure


def _clients_page(content: dict) -> Figure:
    figure = _page(content, 5)
    clients = content["clients"]
    _heading(figure, 0.915, SECTIONS[10], f"The {len(clients['clients'])} of {clients['population']} current "
             "clients most likely to leave (the call capacity and the random controls held out of it), with what"
             " raises each one's risk against the typical client.")
    rows = [[str(c["rank"]), c["corporation"][:30], f"{c['percent']:.1f}%",
             "; ".join(r["text"] for r in c["reasons"]) or "-", c.get("action") or "-"] for c in clients["clients"]]
    bottom = _table_at(figure, 0.88, 0.4, ["#", "client", "risk", "why", "action"], rows,
                       [0.05, 0.19, 0.08, 0.5, 0.18])
    outcome = clients.get("outcome")
    if outcome:
        lift = "-" if outcome["lift"] is None else f"{outcome['lift']:.1f}"
        base = "-" if outcome["base_rate"] is None else f"{outcome['base_rate']:.0%}"
        low, high = outcome["hit_rate_ci95"]
        bottom = _lines(figure, bottom - 0.02, f"How right the list of {when(outcome['created_at'])} was: precision at"
                        f" capacity {outcome['hit_rate']:.0%} (95% CI {low:.0%}-{high:.0%}) of {outcome['followed']}"
                        f" listed clients seen again, base rate {base}, lift {lift}.", 150, color=INK)
    if clients["movers"]:
        _heading(figure, bottom - 0.05, f"Rising since version {clients.get('previous_version') or 'the previous one'}",
                 "The clients whose risk rose most between the previous model and this one.")
        rows = [[m["corporation"][:30], f"{m['previous_percent']:.1f}%", f"{m['percent']:.1f}%",
                 f"+{m['rise_points']:.1f} pts"] for m in clients["movers"]]
        _table_at(figure, bottom - 0.085, 0.4, ["client", "before", "now", "rise"], rows, [0.4, 0.2, 0.2, 0.2])
    return figure


def _retention_page(content: dict) -> Figure:
    figure = _page(content, 6)
    retention = content["retention"]
    _heading(figure, 0.915, SECTIONS[11], "Listed clients are drawn at random to be called or held out (\"do not "
             "call (control)\"): the difference in how many left is what the calls changed (intention to treat).")
    y = 0.855
    for line in effect_lines(retention):
        y = _lines(figure, y, line, 125, fontsize=8, color=INK) - 0.003
    rows = effect_rows(retention["effect"])
    if rows:
        y = _table_at(figure, y - 0.01, 0.16, EFFECT_HEADER, rows, [0.18, 0.08, 0.14, 0.14, 0.3, 0.16])
    _heading(figure, y - 0.04, SECTIONS[12])
    y -= 0.065
    for line in economics_lines(retention["economics"], content["clients"].get("population") or 0):
        y = _lines(figure, y, line, 125, fontsize=8, color=INK) - 0.003
    draw_profit(figure.add_axes((0.1, y - 0.2, 0.84, 0.18)), retention["economics"])
    _heading(figure, y - 0.25, SECTIONS[13], "Expected: the share of leavers the model's probabilities foretold, with"
             " its 95% interval; realized: what happened to the same clients (the holdout where there is one).")
    rows = outcome_rows(retention["outcomes"])
    bottom = _table_at(figure, y - 0.3, 0.16, OUTCOME_HEADER, rows, [0.17, 0.08, 0.12, 0.1, 0.2, 0.2, 0.1])
    if retention["more_outcomes"]:
        _lines(figure, bottom - 0.015, f"and {retention['more_outcomes']} more measured list(s) (GET /risk/outcomes)")
    return figure


def pdf(content: dict) -> bytes:
    """The report as a 6-page A4 PDF."""
    buffer = io.BytesIO()
    metadata = {"Title": f"Model report, version {content['version']['label']}", "Creator": "reporting.py"}
    with matplotlib.rc_context(STYLE), PdfPages(buffer, metadata=metadata) as document:
        for page in (_summary_page, _data_page, _history_page, _operations_page, _clients_page, _retention_page):
            document.savefig(page(content))
    return buffer.getvalue()


# ---- the HTML --------------------------------------------------------------------------------------------------

def html(content: dict) -> str:
    """The report as one self-contained HTML page (charts inline as data: URIs)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    images = {name: "data:image/png;base64," + base64.b64encode(png(content, name)).decode() for name in CHARTS}
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    return environment.get_template("report.html").render(c=content, images=images, sections=SECTIONS, fmt=fmt,
                                                          interval=interval, when=when,
                                                          latest_timing=latest_timing,
                                                          capacity_rows=capacity_rows(content),
                                                          effect_lines=effect_lines(content["retention"]),
                                                          effect_rows=effect_rows(content["retention"]["effect"]),
                                                          effect_header=EFFECT_HEADER, outcome_header=OUTCOME_HEADER,
                                                          outcome_rows=outcome_rows(content["retention"]["outcomes"]),
                                                          economics_lines=economics_lines(
                                                              content["retention"]["economics"],
                                                              content["clients"].get("population") or 0),
                                                          calibration_line=calibration_line(content))
