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

    Each group of low-precision parameters gets one flat float32 master tensor, so a step is a
    handful of kernels whatever the number of parameters: the model's gradients are gathered into
    it with one ``cat``, AdamW updates it, and it is written back to the parameters with one cast
    and one multi-tensor copy (rounded once). A parameter without a gradient in a step counts as
    a zero gradient (AdamW's moments and weight decay still move it), as in frameworks with flat
    buffers; in training every trainable parameter has one.
    """

    def __init__(self, params, **kwargs):
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self._model_params: list[list[torch.Tensor]] = []
        master_groups = []
        for group in groups:
            model_params = list(group["params"])
            low = bool(model_params) and model_params[0].dtype != torch.float32
            if any((p.dtype != torch.float32) != low for p in model_params):
                raise ValueError("MasterAdamW: a parameter group mixes float32 and low-precision parameters")
            if low:
                flat = torch.cat([p.detach().reshape(-1).float() for p in model_params])
                masters = [flat]
            else:
                masters = model_params
            self._model_params.append(model_params if low else [])
            master_groups.append({**group, "params": masters})
        super().__init__(master_groups, **kwargs)

    def _flat_groups(self):
        """(flat float32 master, the model's parameters) for every low-precision group."""
        for group, model_params in zip(self.param_groups, self._model_params):
            if model_params:
                yield group["params"][0], model_params

    @torch.no_grad()
    def step(self, closure=None):
        active = []
        for master, params in self._flat_groups():
            if all(p.grad is None for p in params):
                master.grad = None  # nothing to learn from in this group: AdamW skips it
                continue
            grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
            master.grad = torch.cat(grads).float()
            active.append((master, params))
        loss = super().step(closure)
        for master, params in active:
            master.grad = None  # the float32 gradients live only during the step
            self._write_back(master, params)
        return loss

    @staticmethod
    def _write_back(master: torch.Tensor, params: list[torch.Tensor]) -> None:
        rounded = master.to(params[0].dtype).split([p.numel() for p in params])
        torch._foreach_copy_(params, [r.view_as(p) for r, p in zip(rounded, params)])

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
        state["master_weights"] = [m.detach() for m, _ in self._flat_groups()]
        return state

    def load_state_dict(self, state_dict):
        masters = state_dict.get("master_weights")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "master_weights"})
        with torch.no_grad():
            for index, (master, params) in enumerate(self._flat_groups()):
                if masters is None:  # a checkpoint written without master weights: start them from the model
                    master.copy_(torch.cat([p.reshape(-1).float() for p in params]))
                else:
                    master.copy_(masters[index])
                    self._write_back(master, params)
