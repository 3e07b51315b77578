"""Dr.GRPO for llm-marl: a new algorithm registered through the ``llm_marl.algorithms``
entry-point group (``spec.py``, torch-free) with its trainer in ``trainer.py``."""
