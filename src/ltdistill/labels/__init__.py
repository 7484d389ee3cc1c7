"""Post-hoc soft-label calibration: ADSA (adsa.py), applied to a set's stored soft labels or to a relabeling
teacher's logits before a model is trained on the set."""

from ltdistill.labels.adsa import (
    ADSACalibration,
    ADSAConfig,
    CalibratedTeacher,
    calibrate,
    calibrated_set,
    estimate,
    estimate_for_set,
    estimate_from_teacher,
    make_config,
)

__all__ = ["ADSACalibration", "ADSAConfig", "CalibratedTeacher", "calibrate", "calibrated_set", "estimate",
           "estimate_for_set", "estimate_from_teacher", "make_config"]
