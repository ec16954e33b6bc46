"""Headless commands behind `main.py <subcommand>`."""
