"""Constraints as a sampler is told them (kerasgrid/results/pareto.py `Constraint.violation`)."""

import math

from kerasgrid.results.pareto import parse_constraint


def violation(text, value):
    return parse_constraint(text, 0, "my.yaml").violation(value)


def test_a_violation_is_how_far_a_value_breaks_its_constraint_and_not_positive_if_kept():
    assert violation("params_count <= 50000", 60000) == 10000 and violation("params_count <= 50000", 40000) == -10000
    assert violation("val_accuracy >= 0.9", 0.85) == 0.9 - 0.85 and violation("val_accuracy > 0.9", 0.95) < 0
    assert violation("params_count <= 50000", 50000) == 0  # reached, kept: Optuna counts 0 as feasible
    # A strict bound reached is broken, if only just; a value that is not finite breaks any bound.
    assert 0 < violation("val_loss < 0.5", 0.5) < 1e-300 and 0 < violation("fit_seconds > 2", 2)
    assert violation("val_loss < 0.5", math.nan) == math.inf and violation("val_loss >= 0.5", math.inf) == math.inf
