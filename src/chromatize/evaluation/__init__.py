"""Evaluation: metrics, scoring models on colour photos made gray, the HTML report and
the hint sweep of guided methods."""
