"""Ground truth that proves the rest: the simulator, evaluation, the ideal observer."""
