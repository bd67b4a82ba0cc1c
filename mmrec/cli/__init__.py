"""Typer command-line interface: parses options, builds Settings once, renders with rich."""
