"""Image synthesis, figures and generation metrics from DG-Net checkpoints.

Run as scripts from the repository root: `test_folder.py`, `figures.py`, `generation_metrics.py`
(each takes --checkpoint CKPT; --help says the rest).
"""
