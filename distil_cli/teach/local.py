"""The ``local`` teacher: a transformers model on this machine, batched generation."""

from __future__ import annotations

import time

from distil_cli.teach.base import Completion


class LocalTeacher:
    """A transformers model on this machine; calls are serialised and batched by the caller."""

    name = "local"

    def __init__(self, source: str, model_name: str, max_tokens: int, temperature: float, formatter: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM

        from distil_cli.models import load_tokenizer
        from distil_cli.plugins.choosing import choose_formatter

        self.model = model_name
        self.tokenizer = load_tokenizer(source)
        self.formatter = choose_formatter(self.tokenizer, formatter)
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self.lm = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        if torch.cuda.is_available():
            self.lm = self.lm.to("cuda")
        self.max_tokens = max_tokens
        self.temperature = temperature

    def _prompt(self, messages: list[dict[str, str]]) -> str:
        """The messages as one prompt: the user message already holds instruction and input."""
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = next(m["content"] for m in messages if m["role"] == "user")
        return self.formatter.format("", user, system=system).prompt

    def complete_batch(self, batch: list[list[dict[str, str]]]) -> list[Completion]:
        from distil_cli.generate.batched import generate_batched
        from distil_cli.prompts import stop_token_ids

        started = time.perf_counter()
        ids = [self.tokenizer(self._prompt(m), add_special_tokens=False)["input_ids"] for m in batch]
        stops = stop_token_ids(self.tokenizer, self.formatter)
        outs = generate_batched(
            self.lm, self.tokenizer, ids, stops, self.max_tokens, batch_size=len(batch), temperature=self.temperature
        )
        latency = round((time.perf_counter() - started) / max(1, len(batch)), 3)
        return [Completion(o.text, o.finish_reason, len(i), o.new_tokens, latency) for o, i in zip(outs, ids)]
