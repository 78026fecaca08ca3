"""Lens policy in one light module (no heavy imports), shared by the engine and the app's help texts.

Every figure here is a documented assumption of the decision, not a measurement; the README section
"How the recommendation works" explains each.
"""

# --- capability (advisor/decide/capability.py) ---------------------------------------------------------
# Tiers are thresholds on each task area's scale, measured down from the best published anchor score in
# that area (e.g. GPQA Diamond for reasoning): frontier = within FRONTIER_MARGIN points of the best model.
FRONTIER_MARGIN = 5.0
ADVANCED_MARGIN = 20.0
ROUTINE_MARGIN = 45.0
# Success prior: at the tier's threshold an answer is accepted SUCCESS_AT_THRESHOLD of the time; every
# SUCCESS_SCALE_POINTS above (below) the threshold is one unit up (down) on the logit scale.
SUCCESS_AT_THRESHOLD = 0.8
SUCCESS_SCALE_POINTS = 6.0
SUCCESS_CAP = 0.97  # a benchmark never promises more than this on someone else's prompts
# Capability uncertainty is priced in: the objective is multiplied by 1 + UNCERTAINTY_PENALTY x the width of
# the score's 80% interval / 100 (about +6% for a published score, +25% or more for an imputed one).
UNCERTAINTY_PENALTY = 1.0

# --- the objective (advisor/decide/rank.py) ---------------------------------------------------------------
# Expected dollars per accepted answer + the value of the time to it. Time is valued per second of waiting:
# a person waiting (interactive) far more than a batch job; the iteration lens scales it.
TIME_VALUE_USD_PER_S = {"interactive": 0.01, "batch": 0.0002}  # ~$36/h for a person, ~$0.7/h for a queue
ITERATION_TIME_WEIGHT = {"prototype": 2.0, "evolving": 1.0, "stable": 0.5}
# A prototype avoids a procurement and data-review loop by staying local: hosted options carry this factor.
PROTOTYPE_HOSTED_FACTOR = 1.25
# Seconds beyond the latency budget count this many times a second of waiting (a soft budget, no cliff).
OVER_BUDGET_WEIGHT = 10.0
