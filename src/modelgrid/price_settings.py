"""What a model costs its callers, as configured."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PriceSettings(BaseModel):
    """What a model costs its callers, in credits per million tokens (DeepSeek's and OpenAI's
    unit), and the discount it gives in the off-peak window."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)  # None: the input price
    output: float = Field(0.0, ge=0)
    off_peak_discount: float = Field(0.0, ge=0, le=1)  # 0.5: half price off-peak

    @model_validator(mode="after")
    def _cached_not_dearer(self) -> PriceSettings:
        # Reservations price every prompt token as uncached: that bound must hold.
        if self.cached_input is not None and self.cached_input > self.input:
            raise ValueError("cached_input may not exceed input")
        return self
