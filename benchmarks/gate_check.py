"""One row of a gate verdict."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    """A budget compared with a measurement.

    `warning`: a data warning (e.g. a small slice's gap): shown, never fails the verdict.
    `not_measured`: an optional device class that was not measured: listed as such, never as passed.
    `device`: the device class the value was measured on (latency, speed and instruction counts).
    """

    name: str
    subject: str
    value: float | str | None
    budget: float | str | None
    passed: bool
    detail: str = ""
    warning: bool = False
    not_measured: bool = False
    device: str = ""

    @property
    def status(self) -> str:
        if self.not_measured:
            return "not measured"
        if self.warning:
            return "warning"
        return "pass" if self.passed else "fail"
