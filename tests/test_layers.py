"""Layers resolved down their chains: prompts, policies, prices, adapters and audiences."""

from __future__ import annotations

import pytest

from modelgrid.errors import InvalidRequest
from modelgrid.layer_settings import LayerSettings
from modelgrid.layers import Layer, LayerError, build_layers, layer_prices, layered
from modelgrid.pricing import Price
from modelgrid.types import GenerationRequest, Sampling

MODELS = {"base": object()}
SAMPLING = Sampling(16, None, None, 0.0, 0.0)


def layers(**tables: dict[str, object]) -> dict[str, Layer]:
    return build_layers(
        MODELS, {k.replace("__", "/"): LayerSettings.model_validate(v) for k, v in tables.items()}
    )


def test_a_layer_says_its_parents_prompts_first_unless_it_replaces_them() -> None:
    built = layers(
        base__finance={"system_prompt": "You answer finance questions."},
        base__finance__acme={"system_prompt": "You work for Acme.", "review_policy": "strict"},
        base__finance__solo={"system_prompt": "Only this.", "replace_prompt": True},
    )
    acme = built["base/finance/acme"]
    assert acme.root == "base" and acme.chain == ("base/finance", "base/finance/acme")
    assert acme.system_prompt == "You answer finance questions.\n\nYou work for Acme."
    assert acme.review_policies == ("strict",)
    assert built["base/finance/solo"].system_prompt == "Only this."


def test_parents_are_named_or_taken_from_the_name() -> None:
    built = layers(tutor={"parent": "base", "adapter": "maths-lora"}, tutor__kids={})
    assert built["tutor/kids"].root == "base"
    assert built["tutor/kids"].adapter == "maths-lora"  # inherited
    with pytest.raises(LayerError, match="neither a model nor a layer"):
        layers(other__x={})
    with pytest.raises(LayerError, match="cycle"):
        layers(a={"parent": "b"}, b={"parent": "a"})
    with pytest.raises(LayerError, match="no parent"):
        layers(orphan={})
    with pytest.raises(LayerError, match="a model has that name"):
        build_layers(MODELS, {"base": LayerSettings(parent="base")})


def test_prices_come_from_the_nearest_layer_that_sets_them() -> None:
    built = layers(base__finance={}, base__finance__acme={}, base__tutor={})
    models = {"base": Price(input=1, output=2)}
    own = {"base/finance": Price(input=5, output=9)}
    found = layer_prices(models, built, own)
    assert found["base/finance/acme"] == found["base/finance"] == Price(input=5, output=9)
    assert found["base/tutor"] == Price(input=1, output=2)


def test_audiences() -> None:
    built = layers(
        base__open={},
        base__pro={"visibility": "plans", "plans": ["pro"]},
        base__acme={"visibility": "org", "org": "acme"},
    )
    assert built["base/open"].visible_to("free", None, None)
    assert built["base/pro"].visible_to("pro", "org_1", "x")
    assert not built["base/pro"].visible_to("free", "org_1", "x")
    assert built["base/acme"].visible_to("free", "org_9", "acme")  # by name
    assert not built["base/acme"].visible_to("enterprise", "org_2", "other")
    assert built["base/acme"].visible_to(None, None, None)  # the operator's own keys
    with pytest.raises(ValueError, match="needs the organisation"):
        LayerSettings(visibility="org")


def test_a_layered_request_carries_the_instructions_and_the_adapter() -> None:
    layer = layers(base__finance={"system_prompt": "Be brief.", "adapter": "fin"})["base/finance"]
    chat = GenerationRequest(SAMPLING, messages=[{"role": "user", "content": "hi"}])
    made = layered(layer, chat)
    assert made.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert made.adapter == "fin"
    text = layered(layer, GenerationRequest(SAMPLING, prompt="Q: 2+2?"))
    assert text.prompt == "Be brief.\n\nQ: 2+2?"
    with pytest.raises(InvalidRequest, match="text prompt"):
        layered(layer, GenerationRequest(SAMPLING, prompt=[1, 2, 3]))
