"""Summary statistics of the data's columns, defined once: per column the count of values, mean, M2 and the
distinct values with their counts (exact, and mergeable by Chan's formula as the prepared state grows), and from
these the mean, median, standard deviation (n - 1), range and missing share. Diagnostics, the report's data
quality and the prepared read state (risk/prepared.py) all call these; NumPy and pyarrow (pandas for a frame).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from risk import arrownp, contract

if TYPE_CHECKING:
    import pandas as pd

NUMBERS = (*contract.FEATURES, contract.TARGET)  # the columns with statistics; the others have a count only
SHOWN = ("mean", "median", "std")  # diagnostics' summary_statistics of each feature


def column_stats(values: np.ndarray) -> dict:
    """One column's mergeable statistics: n (finite values), mean, M2 (sum of squared deviations), the distinct
    values (sorted) and their counts (counted by Arrow's hash table, then only the distinct values sorted: a
    month of rows in a tenth of np.unique's time)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    values = (values if finite.all() else values[finite]) + 0.0  # -0.0 counted as 0.0, as np.unique does
    counted = arrownp.call("value_counts", arrownp.from_numpy(values))
    distinct = arrownp.to_numpy(counted.field("values"))
    order = np.argsort(distinct)
    mean = float(values.mean()) if values.size else 0.0
    values -= mean
    values *= values  # in place and summed pairwise, not np.dot: a BLAS call leaves OpenBLAS's threads spinning
    return {"n": int(values.size), "mean": mean, "m2": float(values.sum()),
            "values": distinct[order], "counts": arrownp.to_numpy(counted.field("counts"))[order]
            .astype(np.int64)}


def merged(a: dict, b: dict) -> dict:
    """Chan et al.'s pairwise update of count, mean and M2, and the union of the value counts."""
    n = a["n"] + b["n"]
    if not n:
        return a
    delta = b["mean"] - a["mean"]
    mean = a["mean"] + delta * b["n"] / n
    m2 = a["m2"] + b["m2"] + delta * delta * a["n"] * b["n"] / n
    values, inverse = np.unique(np.r_[a["values"], b["values"]], return_inverse=True)
    counts = np.bincount(inverse, weights=np.r_[a["counts"], b["counts"]], minlength=values.size).astype(np.int64)
    return {"n": n, "mean": mean, "m2": m2, "values": values, "counts": counts}


def median(stat: dict) -> float:
    """The median from the value counts: the middle value, or the mean of the two middle ones; NaN without any."""
    if not stat["n"]:
        return float("nan")
    cumulative = np.cumsum(stat["counts"])
    low = stat["values"][np.searchsorted(cumulative, (stat["n"] + 1) // 2)]
    high = stat["values"][np.searchsorted(cumulative, stat["n"] // 2 + 1)]
    return float((low + high) / 2)


def described(stat: dict, rows: int) -> dict:
    """THE summary of one column: its missing share of `rows` and, for a column with values, mean, median, std
    (n - 1), min and max (NaN where undefined: no value, or one value for the std)."""
    out = {"missing": (rows - stat["n"]) / rows if rows else float("nan")}
    if "values" not in stat:
        return out
    n, values, nan = stat["n"], stat["values"], float("nan")
    return {**out, "mean": stat["mean"] if n else nan, "median": median(stat),
            "std": (stat["m2"] / (n - 1)) ** 0.5 if n > 1 else nan,
            "min": float(values[0]) if values.size else nan, "max": float(values[-1]) if values.size else nan}


def table(stats: dict[str, dict], rows: int) -> dict[str, dict]:
    """Each column's summary (`described`) from its statistics."""
    return {name: described(stat, rows) for name, stat in stats.items()}


def of_frame(frame: pd.DataFrame) -> dict[str, dict]:
    """Each column's summary of a frame: statistics for the contract's numbers (read as numbers), a count of
    the filled cells for any other column."""
    import pandas as pd

    stats = {str(name): column_stats(pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float))
             if name in NUMBERS else {"n": int(frame[name].notna().sum())} for name in frame.columns}
    return table(stats, len(frame))


def statistics(summaries: dict[str, dict]) -> dict[str, dict]:
    """Mean, median and std of each feature (diagnostics' `summary_statistics`)."""
    return {name: {key: summaries[name][key] for key in SHOWN} for name in contract.FEATURES if name in summaries}


def missing(summaries: dict[str, dict]) -> dict[str, float]:
    """The missing share of each column (diagnostics' `missing_share`)."""
    return {name: entry["missing"] for name, entry in summaries.items()}


def quality(summaries: dict[str, dict]) -> list[dict]:
    """The report's data quality: per column the missing share and, for the features, range, mean and median."""
    keys = ("min", "max", "mean", "median")
    return [{"column": name, "missing": entry["missing"],
             **{key: entry[key] if name in contract.FEATURES else None for key in keys}}
            for name, entry in summaries.items()]
