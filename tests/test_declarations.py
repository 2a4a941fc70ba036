"""One declaration per option: every settings field carries its flag, help and (train) resume rule.

The CLI, the resume check and the TrainingArguments mapping are derived from the fields, so a
field without a flag or a rule is a field some path forgets: these tests name it.
"""

from __future__ import annotations

import click
import pytest
import typer.main

from distil_cli.cli import app
from distil_cli.cli.options import flag_names
from distil_cli.settings import SECTIONS, TrainSettings
from distil_cli.settings.fields import MATCH, MAY_CHANGE, meta
from distil_cli.train.config import owned
from distil_cli.train.resume import MEANING, resume_rules

# the command whose flags each section's fields become
COMMANDS = {
    "prepare": ("prepare",),
    "annotate": ("annotate",),
    "train": ("train",),
    "infer": ("infer",),
    "score": ("score",),
    "models": ("models", "pull"),
}


def _command(path: tuple[str, ...]) -> click.Command:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


def test_every_section_has_a_command():
    assert set(COMMANDS) == set(SECTIONS)


@pytest.mark.parametrize("section", sorted(COMMANDS))
def test_every_field_is_a_flag_of_its_command_with_its_help(section):
    schema = SECTIONS[section]
    options = _options(_command(COMMANDS[section]))
    helps = {o: p.help for p in _command(COMMANDS[section]).params for o in p.opts}
    for name, info in schema.model_fields.items():
        if meta(schema, name).get("cli") is False:
            continue
        names = flag_names(section, name)
        assert set(names) <= options, f"[{section}] {name}: flags {names} missing from the command"
        assert info.description and info.description.split()[0] in helps[names[0]], f"[{section}] {name}: no help"


def test_every_train_field_has_a_resume_rule():
    rules = resume_rules()
    assert set(rules) == set(TrainSettings.model_fields)
    assert set(rules.values()) <= {MATCH, MAY_CHANGE}
    # what changes the run's meaning must match; what only changes logging or speed may change
    assert {"objective", "alpha", "lr", "seed", "model", "trainer_args", "lora_r"} <= set(MEANING)
    assert not {"eval_samples", "max_new_tokens", "report_to"} & set(MEANING)


def test_the_training_arguments_distil_sets_come_from_the_fields():
    sets = owned()
    for hf in ("learning_rate", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps"):
        assert hf in sets
    assert {"max_steps", "seed", "weight_decay", "load_best_model_at_end", "save_steps"} <= set(sets)
    assert sets["learning_rate"] == "lr" and sets["save_steps"] == "eval_steps"


def test_a_train_field_without_a_resume_rule_is_refused():
    from pydantic import create_model

    from distil_cli.settings.fields import setting

    knob = create_model("Knob", __base__=TrainSettings, extra_knob=(int, setting(1, description="A knob.")))
    with pytest.raises(TypeError, match=r"\['extra_knob'\] declare no resume rule"):
        resume_rules(knob)
