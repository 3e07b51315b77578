"""Baselines: MAGRPO, independent GRPO, single-agent GRPO and untrained protocols.

The trainers arrive with their own issue; this package already installs as
``llm_marl.baselines`` so that its layout is fixed from the start.
"""
