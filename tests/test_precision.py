"""``--precision bf16``: bf16 weights, float32 master weights in the optimizer (MasterAdamW)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import run_cli

from distil_cli.settings import TrainSettings
from distil_cli.train.precision import MasterAdamW


def _grads(steps: int, shape=(8, 4)) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(shape, generator=generator).to(torch.bfloat16) for _ in range(steps)]


def test_master_weights_follow_float32_adamw_exactly_and_keep_small_updates():
    start = torch.ones(8, 4)
    low = torch.nn.Parameter(start.to(torch.bfloat16))
    reference = torch.nn.Parameter(start.clone())
    plain_bf16 = torch.nn.Parameter(start.to(torch.bfloat16))
    master = MasterAdamW([low], lr=1e-4, weight_decay=0.0)
    ref = torch.optim.AdamW([reference], lr=1e-4, weight_decay=0.0)
    plain = torch.optim.AdamW([plain_bf16], lr=1e-4, weight_decay=0.0)
    for grad in _grads(5):
        low.grad, reference.grad, plain_bf16.grad = grad.clone(), grad.float(), grad.clone()
        master.step(), ref.step(), plain.step()
        master.zero_grad(), ref.zero_grad(), plain.zero_grad()
    kept = master.param_groups[0]["params"][0]
    assert kept.dtype == torch.float32 and torch.equal(kept, reference.detach())  # the same update, in float32
    assert torch.equal(low.detach(), reference.detach().to(torch.bfloat16))  # the model holds it rounded once
    assert low.grad is None and kept.grad is None
    # five steps of 1e-4 on weights of 1.0 are below bf16's resolution there: plain bf16 AdamW loses them all
    assert torch.equal(plain_bf16.detach(), start.to(torch.bfloat16))
    assert not torch.equal(kept, start)


def test_float32_parameters_are_updated_in_place_and_state_round_trips():
    low = torch.nn.Parameter(torch.randn(4, 4).to(torch.bfloat16))
    norm = torch.nn.Parameter(torch.ones(4))  # already float32: no copy
    opt = MasterAdamW([{"params": [low], "weight_decay": 0.1}, {"params": [norm], "weight_decay": 0.0}], lr=1e-2)
    assert opt.param_groups[1]["params"][0] is norm
    grads = _grads(6, (4, 4))
    for grad in grads[:3]:
        low.grad, norm.grad = grad.clone(), grad[0].float()
        opt.step()
        opt.zero_grad()
    saved = copy.deepcopy(opt.state_dict())  # as torch.save would: the live state keeps changing
    # a "resumed" run: the model as saved (bf16), a new optimizer, the saved state
    low2 = torch.nn.Parameter(low.detach().clone())
    norm2 = torch.nn.Parameter(norm.detach().clone())
    opt2 = MasterAdamW([{"params": [low2], "weight_decay": 0.1}, {"params": [norm2], "weight_decay": 0.0}], lr=1e-2)
    opt2.load_state_dict(saved)
    assert torch.equal(opt2.param_groups[0]["params"][0], opt.param_groups[0]["params"][0])
    for grad in grads[3:]:
        for p, q in ((low, norm), (low2, norm2)):
            p.grad, q.grad = grad.clone(), grad[0].float()
        opt.step(), opt2.step()
        opt.zero_grad(), opt2.zero_grad()
    assert torch.equal(opt.param_groups[0]["params"][0], opt2.param_groups[0]["params"][0])
    assert torch.equal(low, low2) and torch.equal(norm, norm2)


def test_bf16_with_lora_is_a_settings_error():
    with pytest.raises(ValueError, match="full fine-tuning"):
        TrainSettings(precision="bf16", lora=True)


def test_bf16_with_lora_is_a_one_line_cli_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = run_cli("train", data, "--out", tmp_path / "run", "--precision", "bf16", "--lora")
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") <= 2 and "full fine-tuning" in result.output and not (tmp_path / "run").exists()


def test_auto_precision_is_bf16_master_weights_only_on_a_bf16_gpu_for_full_fine_tuning(monkeypatch):
    from distil_cli.train import config

    monkeypatch.setattr(config, "bf16_supported", lambda: True)
    assert config.with_precision(TrainSettings()).precision == "bf16"
    assert config.with_precision(TrainSettings(lora=True)).precision == "mixed"  # adapters: autocast
    assert config.with_precision(TrainSettings(precision="mixed")).precision == "mixed"
    other = TrainSettings(trainer_args={"optim": "adafactor"})  # an optimizer without master weights
    assert config.with_precision(other).precision == "mixed"
    with pytest.raises(ValueError, match="AdamW only, not optim 'adafactor'"):
        TrainSettings(precision="bf16", trainer_args={"optim": "adafactor"})
    monkeypatch.setattr(config, "bf16_supported", lambda: False)
    assert config.with_precision(TrainSettings()).precision == "mixed"  # CPU: float32


def test_auto_keeps_the_precision_of_the_run_it_resumes(monkeypatch, tmp_path):
    from distil_cli.train import config
    from distil_cli.train.resume import RunDir, precision_of_run

    monkeypatch.setattr(config, "bf16_supported", lambda: True)
    assert config.with_precision(TrainSettings(), resumed="mixed").precision == "mixed"  # not switched to bf16
    assert config.with_precision(TrainSettings(), resumed="bf16").precision == "bf16"
    assert config.with_precision(TrainSettings(precision="bf16"), resumed="mixed").precision == "bf16"  # asked
    run = tmp_path / "run"
    assert precision_of_run(RunDir.inspect(run)) is None  # nothing to resume: auto decides
    run.mkdir()
    record = {"settings": {"model": "default", "precision": "bf16"}, "model_source": "m", "formatter": "chatml"}
    record |= {"instructions": {}, "max_input_tokens": 8}
    (run / "run.json").write_text(json.dumps(record))
    assert precision_of_run(RunDir.inspect(run)) == "bf16"
    del record["settings"]["precision"]  # a run.json from before distil recorded its precision
    (run / "run.json").write_text(json.dumps(record))
    assert precision_of_run(RunDir.inspect(run)) == "mixed"


@pytest.mark.parametrize("chunk", [MasterAdamW.CHUNK_ELEMENTS, 1, 20])
def test_several_parameters_match_float32_adamw_and_one_without_a_gradient_is_left_alone(chunk, monkeypatch):
    monkeypatch.setattr(MasterAdamW, "CHUNK_ELEMENTS", chunk)  # one chunk, one per parameter, two
    generator = torch.Generator().manual_seed(1)
    shapes = [(6, 3), (5,), (2, 2, 2)]
    start = [torch.randn(s, generator=generator) for s in shapes]
    low = [torch.nn.Parameter(t.to(torch.bfloat16)) for t in start]
    ref = [torch.nn.Parameter(t.to(torch.bfloat16).float()) for t in start]  # the same starting values
    opt = MasterAdamW([{"params": low, "weight_decay": 0.1}], lr=1e-2)
    ref_opt = torch.optim.AdamW([{"params": ref, "weight_decay": 0.1}], lr=1e-2)
    for step in range(4):
        for index, (p, q) in enumerate(zip(low, ref)):
            if index == 1 and step == 3:
                continue  # no gradient this step: AdamW skips it, and so must the master copy
            grad = torch.randn(p.shape, generator=generator).to(torch.bfloat16)
            p.grad, q.grad = grad, grad.float()
        opt.step(), ref_opt.step()
        opt.zero_grad(), ref_opt.zero_grad()
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 3  # groups as they were
    assert all(m.grad is None for m in opt.param_groups[0]["params"])  # float32 gradients freed
    for master, p, q in zip(opt.param_groups[0]["params"], low, ref):
        assert torch.equal(master, q.detach())
        assert p.shape == q.shape and torch.equal(p.detach(), q.detach().to(torch.bfloat16))
