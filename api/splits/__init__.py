"""Splits: frozen train/val/test index lists over a dataset."""
