"""Adapters to the libraries users already have, one module per library.

Each ``llm_marl.integrations.<library>`` module imports its library, so import only the one you
use; the core package never imports them.
"""
