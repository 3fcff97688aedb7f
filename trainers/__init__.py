"""Training methods, chosen by the config's `trainer:` key."""
from configs.registry import Registry

from .base import Trainer, TrainingStopped
from .teacher import TeacherTrainer
from .dgnet import DGNetTrainer
from .cluster_contrast import ClusterContrastTrainer
from .hmr import HMRTrainer
from .gcl import GCLTrainer

TRAINERS: Registry[type[Trainer]] = Registry("trainer", "trainer")
for _trainer in (TeacherTrainer, DGNetTrainer, ClusterContrastTrainer, HMRTrainer, GCLTrainer):
    TRAINERS.add(_trainer.name, _trainer)


def build_trainer(cfg, run_dir) -> Trainer:
    return TRAINERS.get(cfg.trainer)(cfg, run_dir)


__all__ = ["Trainer", "TrainingStopped", "TRAINERS", "build_trainer"]
