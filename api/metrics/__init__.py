"""Metric series (downsampled on the server), comparisons across experiments, live streams."""
