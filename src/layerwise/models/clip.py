"""A pretrained transformers CLIP behind the LayeredClassifier interface: its image tower, layer by
layer, classifying zero-shot through its text tower (arXiv:2406.14479, Appendix D).

Inputs are the project's image tensors (B, C, H, W), normalized with the dataset's own channel
statistics. `embed` turns them into what `CLIPImageProcessor` would have given the model: it
undoes the dataset normalization (back to [0, 1] pixels), repeats a single channel to three (the
processor's convert-to-RGB), resizes the shortest edge to the processor's `size`, centre-crops
to its `crop_size` and normalizes with CLIP's mean and std.

The resize is PIL's bicubic, which the processor's torchvision backend reproduces on uint8
images on the CPU: antialiased bicubic weights (a = -0.5), width first, then height, each pass
clamped to the pixel range (clamping only the end result, as one 2-D `interpolate` would, is
tens of levels of 255 off next to sharp edges). The one difference left is that PIL rounds each
pass to uint8 levels and this keeps the float pixels: about one level (1/255) at most per pixel
before CLIP's normalization, under 0.02 after it. Images already at the crop side are not
resized and match the processor up to float rounding.

The stepping is the body of `CLIPVisionModel.forward` split into its encoder layers: layer 0 is
the embedding output after `pre_layrnorm`, layer l the output of encoder layer l (transformers'
`hidden_states[l]`). A layer's representation is its [CLS] token through `post_layernorm` and
`visual_projection`: the image feature CLIP would give if its tower ended there, in the joint
image-text space, so `width` is the projection dimension. The shared head is zero-shot
classification: `logit_scale.exp()` times the cosine of that feature with the text feature of
each class prompt (`CLIPModel.forward`'s logits_per_image). The norm belongs to `pool`, so
`final_norm` is the identity and `head_input` makes no difference.

The class prompts' text features are computed once, when the model is built, and kept as a
persistent buffer (`class_text_features`): a saved state dict carries the exact classifier its
logits came from, and loads back into a model `from_spec` builds (`.double()` casts it, but it
keeps float32 precision). The text tower and projection are frozen (requires_grad False): the
head reads the buffer, not the tower, so no gradient could reach them, and
DistributedDataParallel skips frozen parameters rather than waiting for their gradients.
`text_layer_features` gives the text tower's side of the cross-modal similarity
(`layerwise.similarity.cross_modal`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from layerwise.errors import ConfigError
from layerwise.models.base import LayeredClassifier

# transformers' CLIPTextTransformer pools the highest token id instead of the first EOS for
# checkpoints whose config says eos_token_id 2 (those converted before transformers PR #24773).
_LEGACY_EOS_ID = 2


def class_prompts(template: str, classes: list[str]) -> list[str]:
    """One prompt per class: `template` with {label} replaced by the class name, its
    underscores read as spaces (e.g. ImageNet folder names such as 'pickup_truck')."""
    if "{label}" not in template:
        raise ConfigError(f"model.prompt {template!r} has no {{label}} for the class name")
    return [template.replace("{label}", name.replace("_", " ")) for name in classes]


def _size(settings, key: str):
    """A key of an image processor's size settings (a dict or transformers' SizeDict)."""
    return settings.get(key) if isinstance(settings, dict) else getattr(settings, key, None)


class CLIPClassifier(LayeredClassifier):
    def __init__(self, model, tokenizer, image_processor, prompts: list[str],
                 normalization: dict, head_input: str = "final_norm"):
        """`model` a transformers CLIPModel, `tokenizer` its tokenizer, `image_processor` its
        CLIPImageProcessor (only size, crop_size, image_mean and image_std are read), `prompts`
        one per class, `normalization` the dataset's {"mean": [...], "std": [...]}."""
        super().__init__(head_input)
        self.clip = model.float()
        vision = model.config.vision_config
        self.num_layers, self.width = vision.num_hidden_layers, model.config.projection_dim
        self.clip.text_model.requires_grad_(False)
        self.clip.text_projection.requires_grad_(False)

        self.shortest_edge = _size(image_processor.size, "shortest_edge")
        self.resize_to = None if self.shortest_edge else (_size(image_processor.size, "height"),
                                                          _size(image_processor.size, "width"))
        self.crop = (_size(image_processor.crop_size, "height"),
                     _size(image_processor.crop_size, "width"))
        if self.crop != (vision.image_size, vision.image_size):
            raise ConfigError(f"the image processor crops to {self.crop}, but the CLIP vision "
                              f"tower takes {vision.image_size}x{vision.image_size} images")
        smallest = self.shortest_edge or min(self.resize_to)
        if max(self.crop) > smallest:
            raise ConfigError(f"the image processor crops {self.crop} out of images resized to "
                              f"{smallest} pixels")

        def channels(values) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)

        # the dataset's statistics (undone) and CLIP's (applied); derived, so not saved
        self.register_buffer("data_mean", channels(normalization["mean"]), persistent=False)
        self.register_buffer("data_std", channels(normalization["std"]), persistent=False)
        self.register_buffer("clip_mean", channels(image_processor.image_mean), persistent=False)
        self.register_buffer("clip_std", channels(image_processor.image_std), persistent=False)

        self.prompts = list(prompts)
        tokens = tokenizer(self.prompts, padding=True, truncation=True, return_tensors="pt",
                           max_length=model.config.text_config.max_position_embeddings)
        self.register_buffer("prompt_ids", tokens["input_ids"], persistent=False)
        self.register_buffer("prompt_mask", tokens["attention_mask"], persistent=False)
        self._eos_positions()  # every prompt must hold the EOS token the tower pools
        with torch.no_grad():
            features = self.clip.get_text_features(input_ids=self.prompt_ids,
                                                   attention_mask=self.prompt_mask).pooler_output
        self.register_buffer("class_text_features", features.float().clone())  # (K, D)

    @classmethod
    def from_spec(cls, model_spec: dict, data_info: dict) -> "CLIPClassifier":
        """The checkpoint `model.pretrained` names (a transformers hub name or a local
        directory): its CLIPModel, tokenizer and image-processor settings, classifying the
        dataset's classes (`data_info["classes"]`) through `model.prompt`."""
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        from layerwise.models import DEFAULT_PROMPT

        name = model_spec.get("pretrained")
        if not name:
            raise ConfigError("model.pretrained is empty: clip analyses a pretrained CLIP "
                              "checkpoint (e.g. openai/clip-vit-base-patch32 or a local directory)")
        classes = data_info.get("classes")
        if not classes or len(classes) != data_info.get("num_classes", len(classes)):
            raise ConfigError("clip classifies zero-shot by class name, but the dataset's "
                              "info.json lists no class name for each of its classes")
        prompts = class_prompts(model_spec.get("prompt") or DEFAULT_PROMPT, classes)
        model = CLIPModel.from_pretrained(name, dtype=torch.float32)
        return cls(model, AutoTokenizer.from_pretrained(name),
                   CLIPImageProcessor.from_pretrained(name), prompts,
                   data_info["normalization"], model_spec.get("head_input", "final_norm"))

    # --- CLIPImageProcessor on normalized tensors -------------------------------------------
    def pixels(self, inputs: torch.Tensor) -> torch.Tensor:
        """Dataset inputs -> the pixel_values CLIPImageProcessor would give the model."""
        std = self.data_std  # the model's float dtype (float32, or float64 after .double())
        x = inputs.to(std.dtype) * std + self.data_mean    # [0, 1] pixels
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        height, width = x.shape[-2:]
        if self.shortest_edge:   # transformers' get_resize_output_image_size
            short, long = (width, height) if width <= height else (height, width)
            new_long = int(self.shortest_edge * long / short)
            size = ((new_long, self.shortest_edge) if width <= height
                    else (self.shortest_edge, new_long))
        else:
            size = self.resize_to
        if width != size[1]:   # PIL's two passes, each clamped to the pixel range
            x = F.interpolate(x, size=(height, size[1]), mode="bicubic", align_corners=False,
                              antialias=True).clamp_(0, 1)
        if height != size[0]:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False,
                              antialias=True).clamp_(0, 1)
        top, left = int((size[0] - self.crop[0]) / 2), int((size[1] - self.crop[1]) / 2)
        x = x[..., top:top + self.crop[0], left:left + self.crop[1]]
        return (x - self.clip_mean) / self.clip_std

    # --- the vision tower, layer by layer -----------------------------------------------------
    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        vision = self.clip.vision_model
        return vision.pre_layrnorm(vision.embeddings(self.pixels(inputs)))

    def block(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        # no mask: every image token attends to every other (CLIPVisionModel passes none)
        return self.clip.vision_model.encoder.layers[index](hidden, None)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        cls_token = self.clip.vision_model.post_layernorm(hidden[:, 0])
        return self.clip.visual_projection(cls_token)

    def final_norm(self, h: torch.Tensor) -> torch.Tensor:
        return h  # post_layernorm is part of pool

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Zero-shot logits: scaled cosine with each class prompt's text feature."""
        text = F.normalize(self.class_text_features, dim=-1)
        return self.clip.logit_scale.exp() * F.normalize(h, dim=-1) @ text.T

    # --- the text tower -------------------------------------------------------------------
    def _eos_positions(self) -> torch.Tensor:
        """The token each prompt is pooled at, picked as CLIPTextTransformer picks it: the
        first EOS token, or for a legacy config (eos_token_id 2) the highest token id."""
        ids, eos = self.prompt_ids.to(torch.int), self.clip.text_model.eos_token_id
        if eos == _LEGACY_EOS_ID:
            return ids.argmax(dim=-1)
        found = ids == eos
        if not found.any(dim=-1).all():
            raise ConfigError(f"the tokenizer's prompts do not all hold the EOS token "
                              f"{eos} the CLIP text tower pools (its config's eos_token_id)")
        return found.int().argmax(dim=-1)

    @torch.no_grad()
    def text_layer_features(self) -> torch.Tensor:
        """(M+1, K, D): each text layer's state of each class prompt at its pooled (EOS)
        token, through the text tower's final_layer_norm and text_projection; layer 0 is the
        embedding output, layer m that of text encoder layer m, and layer M the prompts'
        `get_text_features` (the classifier)."""
        text = self.clip.text_model
        out = text(input_ids=self.prompt_ids, attention_mask=self.prompt_mask,
                   output_hidden_states=True)
        states = torch.stack(out.hidden_states)                 # (M+1, K, T, d_text)
        prompts = torch.arange(len(self.prompts), device=states.device)
        pooled = states[:, prompts, self._eos_positions()]
        return self.clip.text_projection(text.final_layer_norm(pooled))
