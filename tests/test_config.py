import pytest

from configs.loader import ConfigError, load_config, save_config


def write(path, text):
    path.write_text(text)
    return path


def test_defaults_and_overrides():
    cfg = load_config(None, ["model.pooling=gem", "optim.lr=1e-3", "optim.milestones=[5, 9]", "run.amp=true"])
    assert cfg.model.pooling == "gem"
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.milestones == [5, 9]
    assert cfg.run.amp is True
    assert cfg.model.backbone == "resnet50"  # untouched default


def test_base_inheritance_is_deep_and_child_wins(tmp_path):
    write(tmp_path / "base.yaml", "model:\n  pooling: max\n  dropout: 0.25\noptim:\n  lr: 1e-4\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\nmodel:\n  pooling: gem\n")
    cfg = load_config(child)
    assert cfg.model.pooling == "gem" and cfg.model.dropout == 0.25
    assert cfg.optim.lr == pytest.approx(1e-4)  # YAML reads 1e-4 as text; the loader makes it a float


def test_misspelt_key_names_the_closest(tmp_path):
    bad = write(tmp_path / "bad.yaml", "model:\n  poolng: gem\n")
    with pytest.raises(ConfigError, match=r"'model\.poolng'.*did you mean 'model\.pooling'"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"'lr'.*did you mean 'optim\.lr'"):
        load_config(None, ["lr=0.1"])
    with pytest.raises(ConfigError, match="--opts"):
        load_config(None, ["optim.learning_rate=0.1"])


def test_wrong_types_are_errors():
    with pytest.raises(ConfigError, match="expects float"):
        load_config(None, ["optim.lr=fast"])
    with pytest.raises(ConfigError, match="expects int"):
        load_config(None, ["run.max_iter=2.5"])
    with pytest.raises(ConfigError, match="expects bool"):
        load_config(None, ["run.amp=1"])
    with pytest.raises(ConfigError, match="is a section"):
        load_config(None, ["model=resnet"])
    assert load_config(None, ["model.pretrained=weights/r50.pth"]).model.pretrained == "weights/r50.pth"


def test_config_is_read_only():
    cfg = load_config()
    with pytest.raises(TypeError):
        cfg.run.seed = 3


def test_missing_file_and_cycles(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="inherits from itself"):
        load_config(tmp_path / "a.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["model.neck=bnneck", "optim.lr=0.01"])
    save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(tmp_path / "run" / "config.yaml") == cfg
    assert load_config(cfg.to_dict()) == cfg


@pytest.mark.parametrize("name", ["market1501-teacher.yaml", "toy-teacher.yaml"])
def test_shipped_configs_load(name):
    from configs.loader import DEFAULTS_FILE
    load_config(DEFAULTS_FILE.parent / name)


def test_registry_refuses_an_unknown_name_in_one_sentence_and_a_name_twice():
    from configs.registry import Registry
    from models.backbones import BACKBONES
    from trainers import TRAINERS
    from trainers.cluster_round import MEMORIES

    kinds = Registry("widget", "model.widget")
    kinds.register("round")(1)
    kinds.add("square", 2)
    assert kinds.get("square") == 2 and kinds.names() == ["round", "square"] and "round" in kinds
    with pytest.raises(ConfigError, match=r"unknown widget 'rond' \(model.widget\) \(did you mean round\?\); "
                                          r"choose one of round, square$"):
        kinds.get("rond")
    with pytest.raises(ValueError, match="registered twice"):
        kinds.add("round", 3)
    # every kind a config names comes from one: trainers, memories, backbones (data sets: test_datasets)
    assert set(TRAINERS) == {"teacher", "dgnet", "cluster_contrast", "hmr", "gcl"}
    assert set(MEMORIES) == {"cm", "cm_hard", "hybrid", "hybrid_instance", "cfl"}
    assert set(BACKBONES) == {"resnet18", "resnet34", "resnet50", "resnet50_ibn_a"}
    with pytest.raises(ConfigError, match="unknown backbone 'resnet51'.*did you mean resnet50"):
        BACKBONES.get("resnet51")
