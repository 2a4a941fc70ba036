"""``--precision bf16``: bfloat16 weights in the model, float32 master weights in the optimizer.

With ``mixed`` (fp32 weights under bf16 autocast) every forward casts every weight to bf16
again (16 ms of a 120 ms GPU step for the Qwen2.5-0.5B shape, docs/benchmarks.md) and the
residual stream, norms and adds run in float32. With ``bf16`` the model computes in bf16
throughout and ``MasterAdamW`` keeps what must stay precise: a float32 copy of every weight
that the update is applied to (a bf16 weight would lose updates smaller than 1/256 of itself),
copied back to the bf16 weights after each step. The float32 copies travel in the optimizer's
state dict, so ``--resume`` continues from them, not from the rounded bf16 weights.
"""

from __future__ import annotations

import torch


class MasterAdamW(torch.optim.AdamW):
    """AdamW over float32 copies of low-precision parameters (float32 parameters are used as they are).

    ``step``: the model's gradients are copied into the copies' gradients, AdamW updates the
    copies, the copies are written back to the model's parameters (rounded once).
    """

    def __init__(self, params, **kwargs):
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self._model_params: list[list[torch.Tensor]] = []
        master_groups = []
        for group in groups:
            model_params = list(group["params"])
            masters = [p if p.dtype == torch.float32 else p.detach().float().clone() for p in model_params]
            self._model_params.append(model_params)
            master_groups.append({**group, "params": masters})
        super().__init__(master_groups, **kwargs)

    def _pairs(self):
        """(master, model parameter) for every parameter kept as a separate float32 copy."""
        for group, model_params in zip(self.param_groups, self._model_params):
            for master, param in zip(group["params"], model_params):
                if master is not param:
                    yield master, param

    @torch.no_grad()
    def step(self, closure=None):
        pairs = list(self._pairs())
        with_grad = [(m, p) for m, p in pairs if p.grad is not None]
        for master, param in pairs:
            master.grad = torch.empty_like(master) if param.grad is not None else None
        if with_grad:
            torch._foreach_copy_([m.grad for m, _ in with_grad], [p.grad for _, p in with_grad])
        loss = super().step(closure)
        if with_grad:
            torch._foreach_copy_([p for _, p in with_grad], [m for m, _ in with_grad])
        for master, _ in pairs:
            master.grad = None  # the float32 gradients live only during the step
        return loss

    def zero_grad(self, set_to_none: bool = True):
        super().zero_grad(set_to_none)
        for model_params in self._model_params:
            for param in model_params:
                if set_to_none:
                    param.grad = None
                elif param.grad is not None:
                    param.grad.zero_()

    def state_dict(self):
        state = super().state_dict()
        state["master_weights"] = [[m.detach() for m in group["params"]] for group in self.param_groups]
        return state

    def load_state_dict(self, state_dict):
        masters = state_dict.get("master_weights")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "master_weights"})
        if masters is None:  # a checkpoint written without master weights: start them from the model
            with torch.no_grad():
                for master, param in self._pairs():
                    master.copy_(param)
            return
        with torch.no_grad():
            for group, saved, model_params in zip(self.param_groups, masters, self._model_params):
                for master, value, param in zip(group["params"], saved, model_params):
                    master.copy_(value)
                    if master is not param:
                        param.copy_(master)
