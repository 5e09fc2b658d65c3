"""The CLIP backbone against transformers' own CLIP, and the cross-modal similarity against
explicit loops.

A tiny randomly initialised CLIPModel, a word-level tokenizer of the prompts' words and a
CLIPImageProcessor are saved into a temporary directory, which `model.pretrained` then names:
everything loads offline, as a hub checkpoint would.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # conftest sets it too; nothing is downloaded

from layerwise.errors import ConfigError  # noqa: E402
from layerwise.io import load_tensors, save_tensors  # noqa: E402
from layerwise.models import BACKBONES, build_model  # noqa: E402
from layerwise.models.clip import CLIPClassifier  # noqa: E402
from layerwise.similarity.cross_modal import (  # noqa: E402
    COLUMNS, cross_modal_cos, cross_modal_frame, text_cos)
from layerwise.similarity.engine import cos_matrix  # noqa: E402
from layerwise.study.config import validate_config  # noqa: E402

CLASSES = ["cat", "dog", "pickup_truck"]     # prompts of two lengths: padding is exercised
WORDS = ["<|startoftext|>", "<|endoftext|>", "<unk>", "this", "is", "a", "photo", "of", "cat",
         "dog", "pickup", "truck"]
BOS, EOS = 0, 1                              # EOS is not 2: transformers' current pooling
RGB = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
GRAY = {"mean": [0.45], "std": [0.22]}
# The processor (PIL's bicubic) rounds both resizing passes to uint8 levels, embed does not: about
# one level apart at most (1.08 seen on noise), divided by CLIP's smallest std (0.2613)
RESIZE_ATOL = 1.25 / 255 / 0.2613


def info(normalization=RGB, side=16) -> dict:
    channels = len(normalization["mean"])
    return {"input_shape": [channels, side, side], "num_classes": len(CLASSES),
            "classes": CLASSES, "normalization": normalization}


def save_tiny_checkpoint(out, vision_layers: int = 2, projection_dim: int = 16) -> str:
    """Write a tiny CLIP checkpoint into directory `out`: a randomly initialised CLIPModel
    (32x32 images), a word-level tokenizer of the prompts' words and a CLIPImageProcessor."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    words.normalizer = normalizers.Lowercase()
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", BOS), ("<|endoftext|>", EOS)])
    PreTrainedTokenizerFast(tokenizer_object=words, bos_token="<|startoftext|>",
                            eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                            unk_token="<unk>").save_pretrained(out)   # pads with EOS, as CLIP's
    config = CLIPConfig(
        text_config=dict(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                         bos_token_id=BOS, eos_token_id=EOS, pad_token_id=EOS),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=vision_layers,
                           num_attention_heads=2, image_size=32, patch_size=8),
        projection_dim=projection_dim)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32},
                       crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("clip"))


def spec(checkpoint: str, **keys) -> dict:
    return {"arch": "clip", "pretrained": checkpoint, "prompt": "This is a photo of a {label}",
            "head_input": "final_norm", **keys}


@pytest.fixture(scope="module")
def model(checkpoint) -> CLIPClassifier:
    return build_model(spec(checkpoint), info()).eval()


@pytest.fixture(scope="module")
def reference(checkpoint):
    """transformers' own CLIP, loaded on its own, and the class prompts as its tokenizer gives
    them."""
    from transformers import AutoTokenizer, CLIPModel

    prompts = [f"This is a photo of a {name.replace('_', ' ')}" for name in CLASSES]
    tokens = AutoTokenizer.from_pretrained(checkpoint)(prompts, padding=True,
                                                       return_tensors="pt")
    return CLIPModel.from_pretrained(checkpoint).eval(), tokens


def images(n=5, channels=3, side=16, seed=0) -> torch.Tensor:
    """Dataset inputs: normalized with the dataset's statistics."""
    return torch.randn(n, channels, side, side, generator=torch.Generator().manual_seed(seed))


# --- the image tower ---------------------------------------------------------------------------
def test_the_model_is_the_checkpoints_image_tower(model):
    assert (model.num_layers, model.width) == (2, 16)
    assert model.class_text_features.shape == (len(CLASSES), 16)
    assert model.prompts == ["This is a photo of a cat", "This is a photo of a dog",
                             "This is a photo of a pickup truck"]
    text = [*model.clip.text_model.parameters(), *model.clip.text_projection.parameters()]
    assert not any(p.requires_grad for p in text)          # frozen: the head reads a buffer
    assert all(p.requires_grad for p in model.clip.vision_model.parameters())


def test_every_layer_is_the_projected_cls_token_of_transformers_hidden_states(model, reference):
    clip, _ = reference
    x = images()
    with torch.no_grad():
        reps = model.layer_representations(x)
        pixels = model.pixels(x)
        out = clip.vision_model(pixel_values=pixels, output_hidden_states=True)
        # hidden_states[0] is the embedding output after pre_layrnorm, [l] encoder layer l's
        cls_tokens = torch.stack(out.hidden_states)[:, :, 0]
        expected = clip.visual_projection(clip.vision_model.post_layernorm(cls_tokens))
        features = clip.get_image_features(pixel_values=pixels).pooler_output
    assert reps.shape == (3, len(x), 16)
    torch.testing.assert_close(reps, expected)
    torch.testing.assert_close(reps[-1], features)


def test_the_forward_is_clips_zero_shot_logits_per_image(model, reference):
    clip, tokens = reference
    x = images()
    with torch.no_grad():
        logits = model(x)
        expected = clip(**tokens, pixel_values=model.pixels(x)).logits_per_image
        every = model.layer_logits(model.layer_representations(x))
    assert logits.shape == (len(x), len(CLASSES))
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(every[-1], logits)


def test_in_double_precision_the_image_path_is_clips_to_1e_12(model, reference):
    """The class text features were computed once, in float32, when the model was built: in
    double precision CLIP's image features are compared with those same features."""
    clip = copy.deepcopy(reference[0]).double()
    ours, x = copy.deepcopy(model).double(), images().double()
    with torch.no_grad():
        image = clip.get_image_features(pixel_values=ours.pixels(x)).pooler_output
        text = ours.class_text_features
        expected = clip.logit_scale.exp() * (image / image.norm(dim=-1, keepdim=True)) @ (
            text / text.norm(dim=-1, keepdim=True)).T
        torch.testing.assert_close(ours(x), expected, rtol=1e-12, atol=1e-12)


# --- the text tower ----------------------------------------------------------------------------
def truncated_text_features(clip, tokens, layers: int) -> torch.Tensor:
    """get_text_features of the model with only its first `layers` text encoder layers."""
    short = copy.deepcopy(clip)
    short.text_model.encoder.layers = short.text_model.encoder.layers[:layers]
    with torch.no_grad():
        return short.get_text_features(**tokens).pooler_output


@pytest.mark.parametrize("eos_token_id", [EOS, 2])  # 2: legacy pooling at the highest token id
def test_text_layers_are_what_the_tower_would_give_if_it_ended_there(model, reference,
                                                                       eos_token_id):
    clip, tokens = copy.deepcopy(reference[0]), reference[1]
    ours = copy.deepcopy(model)
    for tower in (clip.text_model, ours.clip.text_model):
        tower.eos_token_id = eos_token_id
    features = ours.text_layer_features()
    assert features.shape == (3, len(CLASSES), 16)
    with torch.no_grad():
        last = clip.get_text_features(**tokens).pooler_output
    torch.testing.assert_close(features[-1], last)
    if eos_token_id == EOS:
        torch.testing.assert_close(features[-1], model.class_text_features)
    for layer in range(clip.config.text_config.num_hidden_layers):
        torch.testing.assert_close(features[layer], truncated_text_features(clip, tokens, layer))


def test_the_pooled_token_follows_the_config(model):
    first_eos = model._eos_positions()
    legacy = copy.deepcopy(model)
    legacy.clip.text_model.eos_token_id = 2
    assert first_eos.tolist() == [8, 8, 9]            # the first EOS, not the padding after it
    assert legacy._eos_positions().tolist() == [7, 7, 8]   # the highest id: the class word


# --- preprocessing -----------------------------------------------------------------------------
def processed(pictures: np.ndarray, checkpoint: str) -> torch.Tensor:
    """CLIPImageProcessor's pixel_values of uint8 pictures (N, H, W, C), given as PIL images."""
    from PIL import Image
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor.from_pretrained(checkpoint)
    pil = [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pictures]
    return processor(images=pil, return_tensors="pt")["pixel_values"]


@pytest.mark.parametrize("normalization, height, width, atol", [
    (RGB, 16, 16, RESIZE_ATOL),   # CIFAR-like, upsampled
    (GRAY, 16, 16, RESIZE_ATOL),  # one channel, repeated to three
    (RGB, 16, 24, RESIZE_ATOL),   # not square: shortest edge resized, then centre-cropped
    (RGB, 48, 40, RESIZE_ATOL),   # downsampled (antialiased)
    (RGB, 32, 32, 1e-5),          # already the crop side: nothing is resized
], ids=["upsampled", "one-channel", "not-square", "downsampled", "not-resized"])
def test_embed_preprocesses_as_clips_image_processor(checkpoint, normalization, height, width,
                                                     atol):
    channels = len(normalization["mean"])
    pictures = np.random.default_rng(0).integers(0, 256, (4, height, width, channels),
                                                 dtype=np.uint8)
    mean = torch.tensor(normalization["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"]).view(1, -1, 1, 1)
    x = (torch.from_numpy(pictures).permute(0, 3, 1, 2).float() / 255 - mean) / std
    clip = CLIPClassifier.from_spec(spec(checkpoint), info(normalization, height))
    with torch.no_grad():
        ours = clip.pixels(x)
    expected = processed(pictures, checkpoint)
    assert ours.shape == expected.shape == (4, 3, 32, 32)
    torch.testing.assert_close(ours, expected, rtol=0, atol=atol)


# --- saving and loading ------------------------------------------------------------------------
def test_a_saved_state_dict_loads_into_a_model_from_spec(model, checkpoint, tmp_path):
    state = model.state_dict()
    assert "class_text_features" in state
    assert not {"prompt_ids", "prompt_mask", "data_mean", "clip_std"} & set(state)
    save_tensors(tmp_path / "model.safetensors", state)
    weights, _ = load_tensors(tmp_path / "model.safetensors")
    loaded = CLIPClassifier.from_spec(spec(checkpoint), info()).eval()
    with torch.no_grad():
        loaded.class_text_features.zero_()               # the load must restore it
        loaded.clip.visual_projection.weight.mul_(2)     # and the tower
    loaded.load_state_dict(weights)
    x = images()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


# --- configuration -----------------------------------------------------------------------------
def test_from_spec_needs_a_checkpoint_and_a_label_in_the_prompt(checkpoint):
    with pytest.raises(ConfigError, match="pretrained"):
        CLIPClassifier.from_spec(spec(""), info())
    with pytest.raises(ConfigError, match="label"):
        CLIPClassifier.from_spec(spec(checkpoint, prompt="a photo"), info())


def experiment_config(**model) -> dict:
    return {"datasets": {"digits": {"source": "sklearn_digits"}},
            "experiments": [{"name": "clip", "dataset": "digits", "methods": ["pretrained"],
                             "model": {"arch": "clip", **model}}]}


def test_the_config_check_asks_clip_for_a_checkpoint():
    assert BACKBONES["clip"].inputs == "image" and BACKBONES["clip"].pretrained
    with pytest.raises(ConfigError, match="pretrained"):
        validate_config(experiment_config())
    with pytest.raises(ConfigError, match="pretrained"):
        validate_config({**experiment_config(), "experiments": [
            {**experiment_config()["experiments"][0], "methods": ["standard"]}]})
    with pytest.raises(ConfigError, match=r"model\.prompt"):
        validate_config(experiment_config(pretrained="openai/clip-vit-base-patch32",
                                          prompt="a photo"))
    config = validate_config(experiment_config(pretrained="openai/clip-vit-base-patch32"))
    assert "prompt" not in config["experiments"][0]["model"]   # unset: the paper's, built in


def test_other_backbones_leave_the_prompt_unset():
    with pytest.raises(ConfigError, match="only clip takes prompt"):
        validate_config({"datasets": {"digits": {"source": "sklearn_digits"}},
                         "experiments": [{"name": "vit", "dataset": "digits",
                                          "model": {"arch": "vit", "prompt": "a {label}"}}]})


# --- cross-modal similarity --------------------------------------------------------------------
def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def features():
    generator = torch.Generator().manual_seed(1)
    reps = torch.randn(4, 9, 5, generator=generator) + 0.5      # L+1 = 4, N = 9, D = 5
    text = torch.randn(3, 3, 5, generator=generator)            # M+1 = 3, K = 3
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2, 1])
    return reps, labels, text


def test_text_cos_is_the_mean_cosine_over_prompts(features):
    _, _, text = features
    t = text.double().numpy()
    expected = [[np.mean([cosine(t[i, k], t[j, k]) for k in range(t.shape[1])])
                 for j in range(len(t))] for i in range(len(t))]
    result = text_cos(text)
    assert result.shape == (3, 3) and result.dtype == torch.float64
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-12)


def test_cross_modal_cos_compares_each_image_with_its_own_class_prompt(features):
    reps, labels, text = features
    r, t = reps.double().numpy(), text.double().numpy()
    expected = [[np.mean([cosine(r[i, n], t[j, labels[n]]) for n in range(r.shape[1])])
                 for j in range(len(t))] for i in range(len(r))]
    result = cross_modal_cos(reps, labels, text)
    assert result.shape == (4, 3) and result.dtype == torch.float64
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-12)


def test_the_frame_holds_every_pair_within_and_across_modalities(features):
    reps, labels, text = features
    frame = cross_modal_frame(reps, labels, text)
    assert tuple(frame.columns) == COLUMNS
    pairs = frame.groupby(["modality_a", "modality_b"]).size().to_dict()
    assert pairs == {("image", "image"): 16, ("text", "text"): 9, ("image", "text"): 12}
    r = reps.double().numpy()
    images_only = frame[(frame.modality_a == "image") & (frame.modality_b == "image")]
    for row in images_only.itertuples():
        expected = np.mean([cosine(r[row.layer_a, n], r[row.layer_b, n])
                            for n in range(r.shape[1])])
        assert row.cos == pytest.approx(expected, rel=1e-12)
    text_only = frame[frame.modality_a == "text"].pivot(index="layer_a", columns="layer_b",
                                                       values="cos")
    np.testing.assert_array_equal(text_only.to_numpy(), text_cos(text).numpy())
    across = frame[frame.modality_b == "text"].query("modality_a == 'image'").pivot(
        index="layer_a", columns="layer_b", values="cos")
    np.testing.assert_array_equal(across.to_numpy(), cross_modal_cos(reps, labels, text).numpy())
    centered = cross_modal_frame(reps, labels, text, center=True)
    np.testing.assert_array_equal(centered[centered.modality_b == "image"]["cos"].to_numpy(),
                                  cos_matrix(reps, center=True).ravel())


def test_mismatched_features_are_refused(features):
    reps, labels, text = features
    with pytest.raises(ValueError, match="share D"):
        cross_modal_cos(reps, labels, text[..., :4])
    with pytest.raises(ValueError, match="labels"):
        cross_modal_cos(reps, labels[:-1], text)
    with pytest.raises(ValueError, match="prompts"):
        cross_modal_cos(reps, labels + 1, text)


def test_the_model_gives_the_cross_modal_similarity(model):
    x = images(8)
    with torch.no_grad():
        reps = model.layer_representations(x)
    frame = cross_modal_frame(reps, torch.arange(8) % len(CLASSES),
                              model.text_layer_features())
    assert len(frame) == 3 * 3 + 3 * 3 + 3 * 3 and np.isfinite(frame["cos"]).all()
