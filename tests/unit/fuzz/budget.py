"""How many inputs each fuzz test tries: one Hypothesis profile per budget.

`fuzz-ci` is the default test run's share (CI, 2 cores): a modest, derandomized number of
examples so that a run is reproducible and the whole fuzz set stays within a minute.
`fuzz-long` is the long run, one command (README, "Reliability"):

    HYPOTHESIS_PROFILE=fuzz-long python -m pytest tests/unit/fuzz -q --timeout 3600 \
        --hypothesis-show-statistics

It tries many more inputs and random ones each time (not derandomized), and keeps what it
found in Hypothesis's example database so that a failure replays on the next run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

CI_PROFILE = "fuzz-ci"
LONG_PROFILE = "fuzz-long"
CI_EXAMPLES = 100  # per test, scaled by the test's weight (a slow decoder tries fewer)
LONG_EXAMPLES = 4_000
# Strategies that build txs, blocks and signatures are slow to generate and large; that is
# the point of them, not a problem with the test.
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                 HealthCheck.large_base_example, HealthCheck.function_scoped_fixture]

settings.register_profile(CI_PROFILE, max_examples=CI_EXAMPLES, deadline=None,
                          derandomize=True, database=None, print_blob=True,
                          suppress_health_check=_SLOW_IS_FINE)
settings.register_profile(LONG_PROFILE, max_examples=LONG_EXAMPLES, deadline=None,
                          print_blob=True, suppress_health_check=_SLOW_IS_FINE)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", CI_PROFILE)
if PROFILE not in (CI_PROFILE, LONG_PROFILE):  # another profile of the project's: CI's
    PROFILE = CI_PROFILE
_base = settings.get_profile(PROFILE)


def fuzz(weight: float = 1.0) -> settings:
    """This budget's settings for one test; `weight` scales its number of examples (a test
    whose every input verifies signatures or opens a store tries fewer)."""
    return settings(_base, max_examples=max(5, int(_base.max_examples * weight)))
