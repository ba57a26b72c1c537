"""Failure prediction: per-case features (`case_features`), the sklearn `FailurePredictor`
(`predictor`), honest grouped evaluation (`evaluate`), skops persistence (`persist`) and the
serve-time guard (`guard`). Submodules are imported on use so `import faultlens` stays light."""
