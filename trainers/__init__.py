"""Training methods, chosen by the config's `trainer:` key."""
from .base import Trainer, TrainingStopped
from .teacher import TeacherTrainer
from .dgnet import DGNetTrainer
from .cluster_contrast import ClusterContrastTrainer
from .hmr import HMRTrainer
from .gcl import GCLTrainer

TRAINERS: dict[str, type[Trainer]] = {t.name: t for t in (TeacherTrainer, DGNetTrainer, ClusterContrastTrainer, HMRTrainer,
                                                          GCLTrainer)}


def build_trainer(cfg, run_dir) -> Trainer:
    if cfg.trainer not in TRAINERS:
        raise ValueError(f"unknown trainer {cfg.trainer!r}; choose one of {', '.join(sorted(TRAINERS))}")
    return TRAINERS[cfg.trainer](cfg, run_dir)


__all__ = ["Trainer", "TrainingStopped", "TRAINERS", "build_trainer"]
