"""Per-brand detector parameters, read from the playbook.

Every time-based setting is in hours or days, never in buckets, so the same defaults serve
production (1-minute buckets) and the NAB benchmark (5-minute buckets). The defaults are meant to
work untuned; docs/detect.md says why each one is what it is.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DetectorParams(BaseModel):
    """Knobs of the spike detector. Unknown keys are rejected so playbook typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- spike: one bucket far above normal ------------------------------------------------------
    sensitivity: float = Field(
        3.25,
        gt=0,
        description="z-score, in units of the brand's own noise, that a bucket (spike) or a smoothed "
        "window (sustained rise) must reach",
    )
    spike_window_minutes: float = Field(
        5.0, gt=0, description="a spike is judged on the count over this long (whole buckets, at least one)"
    )
    min_ratio: float = Field(2.0, ge=1.0, description="a spike must be at least this many times expected")
    min_volume: float = Field(10.0, ge=0, description="count needed in the alarm window (spike or sustained)")
    record_half_life_days: float = Field(
        7.0,
        ge=0,
        description="a spike's excess over expected must also beat the largest recent excess, which is "
        "remembered with this half-life (0 turns the check off)",
    )

    # --- sustained: hours of elevated volume -----------------------------------------------------
    sustained_min_ratio: float = Field(1.5, ge=1.0, description="observed/expected over the smoothed window")
    sustained_half_lives_hours: tuple[float, float] = Field(
        (2.0, 8.0), description="the two smoothing memories: a rise over a couple of hours, over a day"
    )

    # --- one crisis, one alarm -------------------------------------------------------------------
    cooldown_hours: float = Field(12.0, ge=0, description="no second alarm sooner than this after one")
    calm_hours: float = Field(3.0, ge=0, description="re-arm only after volume stayed this long near normal")
    rearm_z: float = Field(1.0, description="'near normal': every smoothed z-score below this")

    # --- how the baseline learns -----------------------------------------------------------------
    level_half_life_hours: float = Field(24.0, gt=0, description="memory of the slow level (drift)")
    daily_half_life_days: float = Field(7.0, gt=0, description="memory of the hour-of-day profile")
    weekly_half_life_days: float = Field(21.0, gt=0, description="memory of the day-of-week profile")
    scale_half_life_days: float = Field(7.0, gt=0, description="memory of the noise scale")
    warmup_hours: float = Field(
        24.0,
        ge=0,
        description="cold start: until this much history is seen (a full daily cycle), only glaring spikes "
        "(twice the sensitivity) raise an alarm, and none in the first hour",
    )

    # --- the secondary negative-share series -----------------------------------------------------
    share_sensitivity: float = Field(5.0, gt=0, description="z-score the negative share must reach")
    share_min_ratio: float = Field(1.5, ge=1.0, description="share must be this many times its usual value")
    share_corroboration_z: float = Field(
        2.0, description="the negative count itself must be at least this elevated for a share alarm"
    )

    @model_validator(mode="after")
    def _consistent(self) -> DetectorParams:
        if self.rearm_z >= self.sensitivity:
            raise ValueError("rearm_z must be below sensitivity (hysteresis)")
        if min(self.sustained_half_lives_hours) <= 0:
            raise ValueError("sustained_half_lives_hours must be positive")
        return self
