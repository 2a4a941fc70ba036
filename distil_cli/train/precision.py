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
    copies, the copies are written back to the model's parameters (rounded once), a chunk of
    about ``CHUNK_ELEMENTS`` elements at a time, so the float32 gradients never exist for the
    whole model at once (they would add 4 bytes a parameter to the peak: 6 GB for 1.5B).
    """

    CHUNK_ELEMENTS = 2**27  # 128M elements: 512 MB of float32 gradients at a time

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
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        groups = self.param_groups
        try:
            for group, model_params in zip(groups, self._model_params):
                for chunk in self._chunks(group["params"], model_params):
                    self._step_chunk(group, chunk)
        finally:
            self.param_groups = groups
        return loss

    def _chunks(self, masters, model_params):
        """Runs of (master, parameter) pairs of about ``CHUNK_ELEMENTS`` elements, with a gradient."""
        chunk, size = [], 0
        for master, param in zip(masters, model_params):
            if param.grad is None:
                continue
            chunk.append((master, param))
            size += master.numel()
            if size >= self.CHUNK_ELEMENTS:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def _step_chunk(self, group, chunk):
        """AdamW on one chunk: float32 gradients only for its copies, then rounded back to the model."""
        copies = [(m, p) for m, p in chunk if m is not p]
        for master, _ in copies:
            master.grad = torch.empty_like(master)
        if copies:
            torch._foreach_copy_([m.grad for m, _ in copies], [p.grad for _, p in copies])
        self.param_groups = [{**group, "params": [m for m, _ in chunk]}]
        super().step()
        if copies:
            torch._foreach_copy_([p for _, p in copies], [m for m, _ in copies])
        for master, _ in copies:
            master.grad = None  # the float32 gradients live only during their chunk's update

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
