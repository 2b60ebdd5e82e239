"""Datasets: the built-ins and uploads (csv or npz), validated and stored with a checksum."""
