"""Solvers, schedulers and architectures with their hyperparameters as JSON Schema."""
