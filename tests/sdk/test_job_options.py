"""The job options have one source, the engine's options module; the copies that must stay
literal (the SDK's `Literal[...]` types, which an SDK-only install reads without the engine)
and the ones derived from it (OpenAPI enums, the CLI's choices) are held to it here."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import get_args

from chamelaion import types
from chamelaion.cli import build_parser
from chamelaion.engine.options import DEFAULT_MODEL, MODELS, LipsyncOptions, SpeakerPoint, SyncMode

SYNC_MODES = tuple(mode.value for mode in SyncMode)


def test_sdk_literals_match_the_engine() -> None:
    assert get_args(types.SyncMode) == SYNC_MODES
    assert get_args(types.ModelName) == MODELS
    assert DEFAULT_MODEL in MODELS and LipsyncOptions().model == DEFAULT_MODEL


def test_the_api_schema_offers_exactly_the_engine_options() -> None:
    from chamelaion.server.schemas import GenerateBody, GenerateWithMediaForm

    for model in (GenerateBody, GenerateWithMediaForm):
        schema = model.model_json_schema()
        assert schema["$defs"]["SyncMode"]["enum"] == list(SYNC_MODES)
        assert schema["properties"]["model"]["enum"] == list(MODELS)
        assert schema["properties"]["model"]["default"] == DEFAULT_MODEL


def test_the_mouth_model_registry_is_the_engine_list() -> None:
    from chamelaion.engine import mouthmodel

    assert mouthmodel.MODELS is MODELS


def test_cli_sync_mode_choices_are_the_engine_modes() -> None:
    commands = next(
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    lipsync = commands.choices["lipsync"]
    (sync_mode,) = (action for action in lipsync._actions if action.dest == "sync_mode")
    assert tuple(sync_mode.choices or ()) == SYNC_MODES
    assert sync_mode.default == SyncMode.CUT_OFF.value


def test_the_speaker_point_copies_are_the_engine_point() -> None:
    """The SDK's `SpeakerPoint`, the API's schema and the CLI's `--speaker` carry the engine's
    `SpeakerPoint` fields, with the engine's types and bounds."""
    from chamelaion.server.schemas import GenerateBody

    engine = {f.name: f.type for f in dataclasses.fields(SpeakerPoint)}
    assert engine == {"frame": "int", "x": "float", "y": "float"}
    sdk = typing.get_type_hints(types.SpeakerPoint)
    assert {name: hint.__name__ for name, hint in sdk.items()} == engine
    assert types.SpeakerPoint.__required_keys__ == frozenset(engine)
    for params in (types.LipsyncGenerateParams, types.LipsyncGenerateWithMediaParams):
        assert typing.get_type_hints(params)["speaker"] is types.SpeakerPoint
    schema = GenerateBody.model_json_schema()["$defs"]["SpeakerPoint"]
    assert {name: prop["type"] for name, prop in schema["properties"].items()} == {
        "frame": "integer", "x": "number", "y": "number"
    }  # fmt: skip
    assert (schema["properties"]["frame"]["minimum"], schema["required"]) == (0, list(engine))
    for axis in "xy":
        bounds = schema["properties"][axis]["minimum"], schema["properties"][axis]["maximum"]
        assert bounds == (0, 1)
        assert SpeakerPoint(0, **{"x": 0.5, "y": 0.5, axis: 1.0}).problem() is None
        assert SpeakerPoint(0, **{"x": 0.5, "y": 0.5, axis: 1.01}).problem() is not None

    parser = build_parser()
    args = parser.parse_args(["lipsync", "v.mp4", "a.wav", "-o", "o.mp4", "--speaker", "7,0.25,1"])
    assert args.speaker == SpeakerPoint(7, 0.25, 1.0)
