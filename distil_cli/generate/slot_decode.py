"""How the slot engine runs a decoding step: eagerly over the active rows, or padded and replayed from CUDA graphs."""

from __future__ import annotations

import logging
import os
import weakref

import torch

log = logging.getLogger("distil_cli.generate.slots")  # the engine's logger: its warnings are the engine's


# Models whose decoding step could not be captured: ``auto`` does not try them again (a
# training run evaluates every epoch; one warning is enough).
CAPTURE_FAILED: weakref.WeakSet = weakref.WeakSet()


def graphs_enabled() -> bool:
    """``DISTIL_CUDA_GRAPHS`` unset or true; ``0``, ``false``, ``no``, ``off`` turn CUDA graphs off."""
    return os.environ.get("DISTIL_CUDA_GRAPHS", "1").strip().lower() not in ("0", "false", "no", "off")


def decode_mode(requested: str, device: torch.device, temperature: float, model=None) -> str:
    if requested not in ("auto", "graph", "padded", "exact"):
        raise ValueError(f"decode must be auto, graph, padded or exact, not {requested!r}")
    if requested != "auto":
        return requested
    graphs_on = graphs_enabled() and (model is None or model not in CAPTURE_FAILED)
    if device.type == "cuda" and temperature == 0 and graphs_on:
        return "graph"  # sampling stays eager: its random draws are not replayed from a graph
    return "exact"


# The smallest row bucket: below it a decoding step costs about the same whatever the rows
# (reading the weights dominates), so fewer buckets mean fewer captures; a training-time
# evaluation of 100 records captures one graph.
MIN_BUCKET = 128


class Decoder:
    """Runs ``_SlotRun.decode`` over the active rows.

    ``exact``: the active rows as they are. ``padded``/``graph``: the rows padded with the
    scratch slot to a bucket (128, 256, 512, ... rows, at most the slot count), so a step has one of
    a few shapes; ``graph`` captures each bucket's step once in a CUDA graph and replays it,
    which removes the per-kernel launch cost of the Python forward (a decoding step of a small
    model is otherwise bound by the host, not the GPU). If a capture fails (a model whose
    forward synchronises with the host), the run goes on eagerly, with a warning."""

    def __init__(self, run, mode: str):  # run: slots._SlotRun (its decode, slots, width, scratch)
        self.run, self.mode = run, mode
        self.buffers: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.current: tuple = ()
        self.bucket = 0

    def _bucket(self, n: int) -> int:
        size = MIN_BUCKET
        while size < n:
            size *= 2
        return min(size, self.run.slots)

    def set_rows(self, active: list[int]) -> None:
        run, device = self.run, self.run.device
        if self.mode == "exact":
            rows = torch.tensor(active, dtype=torch.long, device=device)
            cu_q = torch.arange(len(active) + 1, dtype=torch.int32, device=device)
            cu_k = torch.tensor(active + [active[-1] + 1], dtype=torch.int32, device=device) * run.width
            self.current = (rows, cu_q, cu_k)
            return
        bucket = self.bucket = self._bucket(len(active))
        if bucket not in self.buffers:
            self.buffers[bucket] = (
                torch.full((bucket,), run.scratch, dtype=torch.long, device=device),
                torch.arange(bucket + 1, dtype=torch.int32, device=device),
                torch.full((bucket + 1,), run.scratch * run.width, dtype=torch.int32, device=device),
            )
        self.current = self.buffers[bucket]
        if self.mode == "graph" and bucket not in self.graphs:
            self._capture(bucket)
        self._fill(active + [run.scratch] * (bucket - len(active)))

    def _fill(self, rows: list[int]) -> None:
        """The bucket's device rows and key starts (each row's slot), padding rows on the scratch slot."""
        run = self.run
        self.current[0].copy_(torch.tensor(rows, dtype=torch.long))
        self.current[2].copy_(torch.tensor(rows + [run.scratch + 1], dtype=torch.int32) * run.width)

    def _capture(self, bucket: int) -> None:
        """Record the bucket's step; warm-up and capture run on scratch rows only (the real rows come after)."""
        run = self.run
        self._fill([run.scratch] * bucket)
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                run.decode(*self.current)  # warm-up: lazy initialisations happen outside the capture
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                run.decode(*self.current)
            self.graphs[bucket] = graph
        except Exception as error:  # noqa: BLE001 - any capture failure: decode eagerly instead
            log.warning(
                "CUDA graph capture of the decoding step failed (%s); decoding without graphs "
                "(set DISTIL_CUDA_GRAPHS=0 to skip the attempt)",
                str(error).splitlines()[0] if str(error) else type(error).__name__,
            )
            self.mode = "padded"
            self.graphs.clear()
            CAPTURE_FAILED.add(run.model)

    def step(self) -> None:
        if self.mode == "graph":
            self.graphs[self.bucket].replay()
        else:
            self.run.decode(*self.current)
