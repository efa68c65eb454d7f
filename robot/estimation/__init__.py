"""Base state estimation of the G1 from what it publishes (IMU, joint encoders): pure numpy, no MuJoCo."""

from robot.estimation.estimator import BaseEstimate, BaseStateEstimator, EstimatorConfig
from robot.estimation.filter import ContactKalmanFilter, FilterConfig

__all__ = ["BaseEstimate", "BaseStateEstimator", "ContactKalmanFilter", "EstimatorConfig", "FilterConfig"]
