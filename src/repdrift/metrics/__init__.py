"""Similarity measures between paired representations (placeholder until the registry lands)."""
