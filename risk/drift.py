"""Drift decisions as pure functions. Here the course's rule; a later issue adds statistical tests.

A decision is a verdict ("DRIFT" / "NO DRIFT") with the evidence that led to it, ready for the ledger.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

DRIFT = "DRIFT"
NO_DRIFT = "NO DRIFT"


@dataclass(frozen=True)
class Decision:
    verdict: str
    method: str
    evidence: dict

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        facts = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.evidence.items())
        return f"{self.verdict} by {self.method} rule ({facts})"


def course_rule(new_f1: float, deployed_f1: float, new_rows: int) -> Decision:
    """The course's rule: drift when the deployed model's F1 on the new data is below its deployed score."""
    verdict = DRIFT if new_f1 < deployed_f1 else NO_DRIFT
    return Decision(verdict, "raw", {"new_f1": new_f1, "deployed_f1": deployed_f1, "new_rows": new_rows})
