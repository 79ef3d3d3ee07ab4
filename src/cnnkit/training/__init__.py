"""Training: the chapter's recipe, reproducible and resumable.

- `config`: `TrainConfig`, the run's settings with the recipe's defaults (the one copy);
- `engines` / `numpy_engine`: the torch and NumPy engines (`engine.Engine`, the protocol);
- `dataset`: both splits in memory, normalised;
- `runs`: run folders, config.json, metrics files, RNG state, checkpoints of a run, resume;
- `loop`: `train()`, the orchestration of the above.

Nothing here draws or prints; the report is written by the CLI (`cnnkit.render.report`).
"""
