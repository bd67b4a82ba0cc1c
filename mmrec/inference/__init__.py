"""Turning scores into recommendations: top-K with seen items removed, MMR diversity, reasons."""
