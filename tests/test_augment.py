"""The paper's augmentation on whole batches: each step equals its torchvision definition on
exact cases, draws depend on (seed, epoch, step) only, and the log reports throughput."""

import math

import pytest
import torch
import torch.nn.functional as F

from layerwise.train.augment import AugmentSpec, apply, augment_batch, augment_generator, draw


def batch(n=3, c=2, h=6, w=6):
    return torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w) + 1


def params(shift_x=0.0, shift_y=0.0, flip=0.0, degrees=0.0, n=3):
    return torch.tensor([[shift_x, shift_y, flip, math.radians(degrees)]] * n)


def test_zero_draws_leave_the_batch_unchanged():
    x = batch()
    assert torch.equal(apply(x, params()), x)
    assert augment_batch(x, AugmentSpec(), None) is x


@pytest.mark.parametrize("dx, dy", [(2, 0), (-1, 3), (4, -4)])
def test_a_shift_is_a_crop_of_the_zero_padded_image(dx, dy):
    """torchvision's RandomCrop(size, padding=p) at top-left (p + dy, p + dx)."""
    x, pad = batch(), 4
    padded = F.pad(x, (pad, pad, pad, pad))
    expected = padded[:, :, pad + dy:pad + dy + 6, pad + dx:pad + dx + 6]
    assert torch.equal(apply(x, params(dx, dy)), expected)


def test_flip_and_quarter_turns_are_exact():
    x = batch()
    assert torch.equal(apply(x, params(flip=1)), torch.flip(x, dims=[3]))
    turned = apply(x, params(degrees=90))
    assert torch.equal(turned, torch.rot90(x, k=1, dims=(2, 3))) or \
        torch.equal(turned, torch.rot90(x, k=-1, dims=(2, 3)))
    # crop, then flip, then rotate (torchvision's order): the flip mirrors the shifted image
    both = apply(x, params(2, 0, flip=1))
    assert torch.equal(both, torch.flip(apply(x, params(2, 0)), dims=[3]))


def test_small_rotations_keep_the_centre_and_fill_corners_with_zero():
    x = torch.ones(1, 1, 9, 9)
    out = apply(x, params(degrees=15, n=1))
    assert out[0, 0, 4, 4] == 1 and out[0, 0, 0, 0] == 0


def test_draws_depend_on_seed_epoch_and_step_only_and_stay_in_range():
    spec = AugmentSpec(crop_padding=4, flip=True, rotation_degrees=15)
    a = draw(spec, 500, augment_generator(0, 1, 2))
    assert torch.equal(a, draw(spec, 500, augment_generator(0, 1, 2)))
    assert not torch.equal(a, draw(spec, 500, augment_generator(0, 1, 3)))
    assert a[:, :2].abs().max() == 4 and set(a[:, 2].tolist()) == {0.0, 1.0}
    assert a[:, 3].abs().max() <= math.radians(15)
    off = draw(AugmentSpec(crop_padding=4), 500, augment_generator(0, 1, 2))
    assert torch.equal(off[:, :2], a[:, :2]) and not off[:, 2:].any()


def test_augmentation_needs_image_batches():
    with pytest.raises(ValueError, match="image batches"):
        augment_batch(torch.ones(4, 10), AugmentSpec(flip=True), params(n=4))


@pytest.mark.slow
def test_gpu_smoke_benchmark_runs_on_the_cpu_and_prints_one_json_line():
    import json
    import subprocess
    import sys

    from conftest import ROOT

    run = subprocess.run([sys.executable, "-m", "benchmarks.gpu_smoke", "--device", "cpu",
                          "--steps", "5", "--width", "64"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["steps"] == 5 and len(result["loss_curve"]) == 5
    assert result["samples_per_second"] > 0 and result["peak_memory_mb"] > 0
    assert result["data"] == "synthetic" and result["device"] == "cpu"
