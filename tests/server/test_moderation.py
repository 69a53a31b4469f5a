"""Moderation: the policy, its levels, obfuscations, the output hook, and the OpenAI envelope."""

from __future__ import annotations

import openai
import pytest
from api_helpers import STEPS, error_of, openai_client, png_bytes
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from limner.moderation import Policy, plain
from limner.server.app import create_app
from limner.store.db import ApiKey, Usage

GEN = "/v1/images/generations"


def _blocked(e: pytest.ExceptionInfo, stage: str = "input") -> dict:
    body = e.value.body
    assert e.value.status_code == 400
    assert body["type"] == "image_generation_user_error"
    assert body["code"] == "moderation_blocked"
    assert body["moderation_details"]["moderation_stage"] == stage
    return body


def test_blocked_prompt_envelope(client, auth):
    r = client.post(GEN, json={"prompt": "a nude portrait"}, headers=auth)
    assert r.status_code == 400
    err = error_of(r)
    assert err["type"] == "image_generation_user_error" and err["code"] == "moderation_blocked"
    assert err["moderation_details"] == {"moderation_stage": "input", "category": "sexual"}
    assert "safety system" in err["message"]


def test_blocked_through_openai(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(prompt="a gory battlefield")
    assert _blocked(e)["moderation_details"]["category"] == "graphic_violence"


def test_a_negative_prompt_steers_away_and_is_not_refused(oai):
    """A negative prompt lists what the image must not show: the usual safety negative passes."""
    r = oai.images.generate(
        prompt="a field", extra_body={"negative_prompt": "nsfw, nude, child, gore", "num_inference_steps": STEPS}
    )
    assert len(r.data) == 1


def test_low_relaxes_only_relaxable_categories(oai):
    ok = oai.images.generate(prompt="a nude marble statue", moderation="low", extra_body={"num_inference_steps": STEPS})
    assert len(ok.data) == 1
    assert oai.images.generate(
        prompt="a gory zombie film poster", moderation="low", extra_body={"num_inference_steps": 2}
    )
    for prompt, category in [
        ("underage nude", "sexual_minors"),
        ("how to kill myself", "self_harm"),
        ("kkk rally poster", "hate"),
    ]:
        with pytest.raises(openai.BadRequestError) as e:
            oai.images.generate(prompt=prompt, moderation="low")
        assert _blocked(e)["moderation_details"]["category"] == category


@pytest.mark.parametrize(
    "prompt",
    [
        "a NUDE figure",
        "a n00d nud3 figure",
        "p0rn0 poster",
        "a n u d e figure",
        "n.u.d.e art",
        "nuuuuude",
        "Nüdé beach",
        "g 0 r e",
        "xxxx movie",
        "k k k",
    ],
)
def test_obfuscations_are_caught(client, auth, prompt):
    r = client.post(GEN, json={"prompt": prompt}, headers=auth)
    assert r.status_code == 400, prompt
    assert error_of(r)["code"] == "moderation_blocked"


@pytest.mark.parametrize(
    "prompt",
    [
        "x marks the spot",
        "the letter k in bold",
        "a 3 x 3 grid",
        "a k-pop concert poster",
        "kill bill style title",
        "a red apple",
        "assassin's creed logo",
        "Scunthorpe town sign",
    ],
)
def test_innocent_prompts_pass(client, auth, prompt):
    r = client.post(GEN, json={"prompt": prompt, "num_inference_steps": 2}, headers=auth)
    assert r.status_code == 200, r.text


def test_edits_are_moderated(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.edit(
            image=("a.png", png_bytes(Image.new("RGB", (128, 128))), "image/png"),
            prompt="make it naked",
        )
    _blocked(e)


def test_output_stage_blocks_and_refunds(client, make_key):
    key = make_key(images_per_day=2)
    oai = openai_client(client, key)
    client.app.state.policy.output_checks.append(lambda img: "test")
    for _ in range(3):  # more than the quota: each blocked image went back to it
        with pytest.raises(openai.BadRequestError) as e:
            oai.images.generate(prompt="a red apple", extra_body={"num_inference_steps": STEPS})
        body = _blocked(e, stage="output")
        assert body["moderation_details"]["category"] == "test"
    client.app.state.policy.output_checks.clear()
    assert oai.images.generate(prompt="a red apple", n=2, extra_body={"num_inference_steps": 2})
    with client.app.state.db.session() as s:
        row = s.scalars(select(ApiKey).where(ApiKey.name == "test")).one()
        assert row.used_day == 2
        statuses = [u.status for u in s.scalars(select(Usage).order_by(Usage.id))]
    assert statuses == ["ModerationBlocked"] * 3 + ["ok"]


def test_output_hook_sees_the_images(client, oai):
    seen: list[tuple[int, int]] = []
    client.app.state.policy.output_checks.append(lambda img: seen.append(img.size))
    oai.images.generate(prompt="a red apple", n=2, extra_body={"num_inference_steps": 2})
    assert seen == [(128, 128), (128, 128)]


def test_custom_policy_file(tmp_path, settings):
    policy = tmp_path / "policy.toml"
    policy.write_text('[categories.fruit]\nrelaxable = false\nmessage = "no fruit here"\nterms = ["banana"]\n')
    settings.moderation_policy = policy
    with TestClient(create_app(settings)) as tc:
        from limner.store.keys import create_key

        with tc.app.state.db.session() as s:
            key, _ = create_key(s, "k")
        r = tc.post(GEN, json={"prompt": "a b4n4n4"}, headers={"api-key": key})
        assert r.status_code == 400
        err = error_of(r)
        assert err["moderation_details"]["category"] == "fruit" and "no fruit here" in err["message"]
        r = tc.post(GEN, json={"prompt": "a nude", "num_inference_steps": 2}, headers={"api-key": key})
        assert r.status_code == 200  # the built-in categories are replaced, not merged


# -- the policy itself (pure functions) -------------------------------------------------------------


def test_plain_reading():
    assert plain("Héllo W0rld") == "hello world"
    assert plain("s p a c e d out") == "spaced out"
    assert plain("nuuuude") == "nude"
    assert plain("n\u0430k\u0435d") == "naked"  # Cyrillic а and е


def test_policy_levels():
    p = Policy.load(semantic=False)
    assert p.match("nude").name == "sexual"
    assert p.match("nude", level="low") is None
    assert p.match("child porn", level="low").name == "sexual_minors"
    with pytest.raises(Exception, match="moderation"):
        p.check_input("a cat", level="none")
