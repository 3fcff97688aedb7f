"""The precision `run.amp` trains in: float16 on CUDA; on a CPU, bfloat16 where it is native and
float32 (with a warning) where it would be emulated. The CPU's answer is faked, so every machine
checks both branches."""
import warnings

import pytest
import torch

from runs import fake_native_bfloat16
from runtime.device import amp_dtype


def test_a_cpu_with_native_bfloat16_uses_it(monkeypatch):
    fake_native_bfloat16(monkeypatch, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert amp_dtype(torch.device("cpu")) == torch.bfloat16


def test_a_cpu_without_native_bfloat16_trains_in_float32_and_says_so(monkeypatch):
    fake_native_bfloat16(monkeypatch, False)
    with pytest.warns(UserWarning, match="has no native bfloat16.*training in float32"):
        assert amp_dtype(torch.device("cpu")) is None


def test_cuda_uses_float16():
    assert amp_dtype(torch.device("cuda")) == torch.float16  # the choice reads the device type only
