"""Model organisms: tiny transformers trained on CPU with a known training pathology
(`recipes.py`) or a planted learning bias (`biases.py`), each with its mitigated / clean twin."""
