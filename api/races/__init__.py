"""Races: up to eight solver configurations on one 2-D test function, run by the lab worker."""
