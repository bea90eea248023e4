"""Suite-wide settings.

Hypothesis: no per-example deadline and no "too slow" health check. Both are timing checks,
and this suite runs on shared, noisy machines; speed is measured under bench/, not here.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("sealroom", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sealroom")
