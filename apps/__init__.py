"""Applications shipped with convergence."""
