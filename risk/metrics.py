"""Prometheus metrics of the API: requests by route and status, latencies, predictions, the model version,
and the pipeline's last run (read from the ledger at scrape time).

Under gunicorn the workers share counts through prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by gunicorn.conf.py); the development server keeps them in memory.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from risk import drift
from risk.ledger import LedgerReader, OldLedger

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
# Each verdict's count is exposed from 0, before its first decision: Prometheus' increase() takes a series'
# first sample as its start, so a DRIFT series that appeared at 1 would never fire RiskDriftDecided.
ZERO_DECISIONS = dict.fromkeys((drift.DRIFT, drift.NO_DRIFT, drift.INCONCLUSIVE, drift.RETRAIN), 0)


def method_label(method: str) -> str:
    """The method as a label value, or "other": a client (even one refused with 401) chooses the method, and
    each new label value would be a new series kept for the life of the workers."""
    return method if method in METHODS else "other"


class PipelineCollector:
    """What the alert rules (monitoring/alerts.yml) watch, read from the ledger at scrape time, read-only: when
    the newest pipeline run ended and how, the drift decisions by verdict, and whether the ledger is readable."""

    def __init__(self, ledger_path: Path) -> None:
        self.ledger_path = ledger_path

    def collect(self):  # -> Iterator[GaugeMetricFamily | CounterMetricFamily]
        ended = GaugeMetricFamily("risk_pipeline_last_run_timestamp_seconds",
                                  "When the newest pipeline run ended (Unix time), by outcome", labels=["outcome"])
        decided = CounterMetricFamily("risk_drift_decisions", "Drift decisions recorded in the ledger, by verdict",
                                      labels=["verdict"])
        readable = GaugeMetricFamily("risk_ledger_readable",
                                     "1 when the API can read the ledger (absent before the first run)")
        if self.ledger_path.is_file():
            try:
                with LedgerReader(self.ledger_path) as ledger:
                    row, counts = ledger.last_pipeline_run(), ledger.decision_counts()
            except OldLedger:
                readable.add_metric([], 0)
            else:
                readable.add_metric([], 1)
                if row:
                    ended.add_metric([row["outcome"]], datetime.fromisoformat(row["ended_at"]).timestamp())
                for verdict, count in {**ZERO_DECISIONS, **counts}.items():
                    decided.add_metric([verdict], count)
        yield ended
        yield decided
        yield readable


class Fixed:
    """A collector of metric families computed for this one scrape (no multiprocess files behind them)."""

    def __init__(self, families: list) -> None:
        self.families = families

    def collect(self):  # -> Iterator
        yield from self.families


class Metrics:
    """The app's metrics, in a registry of its own (so that several apps can live in one test process)."""

    def __init__(self, ledger_path: Path) -> None:
        self.registry = CollectorRegistry()
        self.ledger_path = ledger_path
        self.requests = Counter("risk_http_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("risk_http_request_duration_seconds", "Time to answer, by route", ["route"],
                                 buckets=BUCKETS, registry=self.registry)
        self.predictions = Counter("risk_predictions", "Rows scored by POST /prediction", registry=self.registry)
        # Set by each worker when it loads a model. Under gunicorn the newest value of a live worker wins:
        # right after a rollback the first worker to load the older version reports it, and the file of a
        # dead worker is removed by child_exit (mark_process_dead), so its last version no longer counts.
        self.model_version = Gauge("risk_model_version", "The deployed model version being served",
                                   multiprocess_mode="livemostrecent", registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method_label(method), str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def exposition(self, model_ready: bool, refused: int | None = None, calibration: int = 0) -> bytes:
        """The text format: every worker's counts (multiprocess mode) or this process's, then the pipeline,
        whether this worker has a verified model to serve (`risk_model_ready`) and the version `current` names
        if this worker refuses it (`risk_model_refused`), and the lists' calibration alert (`risk_calibration_alert`,
        readside.calibration_alert), all checked at scrape time."""
        if os.environ.get(MULTIPROC_ENV):
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
        else:
            merged = self.registry
        pipeline = CollectorRegistry()
        pipeline.register(PipelineCollector(self.ledger_path))
        ready = GaugeMetricFamily("risk_model_ready", "1 when this worker has a verified model to serve, else 0",
                                  value=1 if model_ready else 0)
        calibrated = GaugeMetricFamily("risk_calibration_alert", "1 when the realized hit rate of the newest three"
                                       " judged call lists fell outside their expected interval, else 0",
                                       value=calibration)
        pipeline.register(Fixed([ready, refused_gauge(refused), calibrated]))
        return generate_latest(merged) + generate_latest(pipeline)


def refused_gauge(refused: int | None) -> GaugeMetricFamily:
    """`risk_model_refused{version="N"} 1` while the version `current` names fails verification in this worker
    (which serves the one before); one sample at 0 with an empty version otherwise, so the series exists."""
    gauge = GaugeMetricFamily("risk_model_refused", "1 while this worker refuses the current version (its files"
                              " fail verification), labelled with it", labels=["version"])
    gauge.add_metric(["" if refused is None else str(refused)], 0 if refused is None else 1)
    return gauge
