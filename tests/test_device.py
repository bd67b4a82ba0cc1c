"""Device names: auto, cpu, cuda[:N]; a request this machine cannot serve names the setting it came from."""

import pytest
import torch

from mmrec.device import resolve_device
from mmrec.errors import DeviceError


def test_names_and_the_setting_a_refused_device_came_from(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device(" CPU ") == torch.device("cpu")
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda")
    assert info.value.hint == "Use --device cpu (or auto)."
    with pytest.raises(DeviceError) as info:
        resolve_device("cuda:1", "features.device")
    assert "Device 'cuda:1' (features.device) was requested" in info.value.message
    assert info.value.hint == "Set features.device to cpu (or auto)."
    for bad in ("cuda:x", "quantum"):
        with pytest.raises(DeviceError, match=f"Unknown device '{bad}'"):
            resolve_device(bad)
