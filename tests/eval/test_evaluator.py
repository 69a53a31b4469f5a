"""The fidelity instruments' networks: the shape evaluator cannot see colour."""

import torch

from limner.eval.evaluator import Evaluator, EvaluatorConfig, grey_copy, random_grey

SMALL = {"channels": (8, 16), "embed": 384}


def test_the_shape_evaluator_is_blind_to_hue_but_the_colour_evaluator_is_not():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 64, 64) * 2 - 1
    swapped = images[:, [2, 0, 1]]  # a hue rotation by 120°: red ↔ green ↔ blue
    shape = Evaluator(EvaluatorConfig(**SMALL, colour=False)).eval()
    colour = Evaluator(EvaluatorConfig(**SMALL)).eval()
    with torch.no_grad():
        assert torch.equal(shape.embed_images(images), shape.embed_images(swapped))
        assert not torch.allclose(colour.embed_images(images), colour.embed_images(swapped))
        # it reads the grey image the way training hands it one
        grey = images.mean(1, keepdim=True)  # (4, 1, 64, 64)
        assert torch.allclose(shape.embed_images(grey), shape.embed_images(images))


def test_random_grey_makes_a_hue_an_unreliable_brightness():
    gen = torch.Generator().manual_seed(0)
    red = torch.tensor([0.8, -0.8, -0.8])[None, :, None, None].expand(256, 3, 8, 8)  # (256, 3, 8, 8)
    out = random_grey(red.clone(), gen)
    assert out.shape == (256, 1, 8, 8) and out.min() >= -1 and out.max() <= 1
    levels = out[:, 0, 0, 0]
    assert levels.std() > 0.25 and levels.min() < -0.5 and levels.max() > 0.3  # near black … light grey
    flat = out.flatten(1)
    assert torch.equal(flat.min(1).values, flat.max(1).values)  # one colour stays one grey


def test_grey_copy_of_the_colour_evaluator_embeds_grey_images_as_it_does():
    torch.manual_seed(0)
    colour = Evaluator(EvaluatorConfig(**SMALL)).eval()
    grey = grey_copy(colour).eval()
    assert not grey.cfg.colour and grey.convs[0][0].in_channels == 1
    shades = (torch.rand(4, 1, 64, 64) * 2 - 1).expand(4, 3, 64, 64)  # R = G = B
    with torch.no_grad():
        torch.testing.assert_close(grey.embed_images(shades), colour.embed_images(shades), rtol=1e-4, atol=1e-5)
