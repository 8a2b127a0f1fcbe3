"""Online spike detection of negative-mention volume (issue 5). See docs/detect.md."""

from .alarm import Alarm
from .core import new_state, observe
from .params import DetectorParams
from .state import STATE_BYTES, DetectorState

__all__ = ["Alarm", "DetectorParams", "DetectorState", "STATE_BYTES", "new_state", "observe"]
