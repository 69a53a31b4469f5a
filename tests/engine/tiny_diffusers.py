"""Tiny, randomly initialised diffusers models on disk — in the layouts real checkpoints have — so
the diffusers backend is tested through exactly the paths users take, without any download: a
Stable Diffusion pipeline folder, the same as an fp16 variant, as one original-layout single file,
a Latent Consistency pipeline (which takes no negative prompt), and LoRA adapters for it."""

from __future__ import annotations

import json
from pathlib import Path

# diffusers' schedulers turn tensors into arrays through numpy's old __array__ protocol, which
# numpy 2 deprecates; a filterwarnings mark for the tests that sample with a pipeline
DIFFUSERS_NUMPY_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword"


def _components(path: Path, time_cond_proj_dim: int | None = None) -> dict:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
        time_cond_proj_dim=time_cond_proj_dim,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        sample_size=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    tok_dir = Path(path) / "_tokenizer_src"
    tok_dir.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in letters:
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab))
    (tok_dir / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=32)
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def make_tiny_sd(path: Path) -> Path:
    """A Stable Diffusion pipeline folder (16×16 images, Euler scheduler)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipe = StableDiffusionPipeline(**_components(path), scheduler=scheduler)
    out = Path(path) / "tiny-sd"
    pipe.save_pretrained(out)
    return out


def make_tiny_lcm(path: Path) -> Path:
    """A Latent Consistency pipeline folder: its ``__call__`` has no ``negative_prompt``."""
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler

    pipe = LatentConsistencyModelPipeline(**_components(path, time_cond_proj_dim=8), scheduler=LCMScheduler())
    out = Path(path) / "tiny-lcm"
    pipe.save_pretrained(out)
    return out


def make_tiny_flux(path: Path) -> Path:
    """A FLUX pipeline folder: packed latents, a flow-matching scheduler, and a negative prompt
    only with true CFG. Its T5 reads the CLIP tokenizer's ids (no sentencepiece model to build)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    parts = _components(path)
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,  # 1 latent channel, packed 2×2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=16,
        pooled_projection_dim=16,
        axes_dims_rope=(2, 2, 4),
    )
    vae = AutoencoderKL(
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
        sample_size=16,
    )
    t5 = T5EncoderModel(T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2))
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=parts["text_encoder"],
        tokenizer=parts["tokenizer"],
        text_encoder_2=t5,
        tokenizer_2=parts["tokenizer"],
        transformer=transformer,
    )
    out = Path(path) / "tiny-flux"
    pipe.save_pretrained(out)
    return out


def save_fp16_variant(folder: Path, out: Path) -> Path:
    """The pipeline's weights in float16 under diffusers' ``fp16`` variant names only
    (``unet/diffusion_pytorch_model.fp16.safetensors`` …), as hubs ship them beside the full ones."""
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True)
    pipe.to(torch.float16).save_pretrained(out, variant="fp16")
    return out


def make_tiny_lora(folder: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter for the tiny UNet's attention projections, with random (non-zero) weights,
    saved as a ``.safetensors`` file the way diffusers' training scripts save theirs."""
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
    unet.add_adapter(config)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(out.parent, unet_lora_layers=layers, weight_name=out.name)
    return out


# -- the original (LDM) layout of a single-file SD 1.x checkpoint --------------------------------
# UNet under model.diffusion_model., VAE under first_stage_model., CLIP under
# cond_stage_model.transformer.; written here from the layout itself, so loading the file with
# from_single_file tests diffusers' conversion back, not a copy of it.

RESNET = (
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("time_emb_proj.", "emb_layers.1."),
    ("conv_shortcut.", "skip_connection."),
)
VAE_RESNET = (("conv_shortcut.", "nin_shortcut."),)
VAE_ATTENTION = (
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
)


def _unet_prefixes(cfg: dict) -> list[tuple[str, str, tuple]]:
    """(diffusers prefix, LDM prefix, renames inside) for a UNet of ``len(down_block_types)``
    blocks of ``layers_per_block`` layers."""
    n, per = len(cfg["down_block_types"]), cfg["layers_per_block"]
    out = [
        ("time_embedding.linear_1.", "time_embed.0.", ()),
        ("time_embedding.linear_2.", "time_embed.2.", ()),
        ("conv_in.", "input_blocks.0.0.", ()),
        ("conv_norm_out.", "out.0.", ()),
        ("conv_out.", "out.2.", ()),
        ("mid_block.resnets.0.", "middle_block.0.", RESNET),
        ("mid_block.attentions.0.", "middle_block.1.", ()),
        ("mid_block.resnets.1.", "middle_block.2.", RESNET),
    ]
    for b in range(n):
        for j in range(per):  # input block 0 is conv_in; each down block adds its layers, then a downsampler
            k = (per + 1) * b + j + 1
            out += [
                (f"down_blocks.{b}.resnets.{j}.", f"input_blocks.{k}.0.", RESNET),
                (f"down_blocks.{b}.attentions.{j}.", f"input_blocks.{k}.1.", ()),
            ]
        for j in range(per + 1):  # up blocks have one layer more; the upsampler sits in the last
            k = (per + 1) * b + j
            out += [
                (f"up_blocks.{b}.resnets.{j}.", f"output_blocks.{k}.0.", RESNET),
                (f"up_blocks.{b}.attentions.{j}.", f"output_blocks.{k}.1.", ()),
            ]
        if b < n - 1:
            up_slot = 2 if "CrossAttn" in cfg["up_block_types"][b] else 1
            out += [
                (f"down_blocks.{b}.downsamplers.0.conv.", f"input_blocks.{(per + 1) * (b + 1)}.0.op.", ()),
                (f"up_blocks.{b}.upsamplers.0.conv.", f"output_blocks.{(per + 1) * b + per}.{up_slot}.conv.", ()),
            ]
    return out


def _vae_prefixes(cfg: dict) -> list[tuple[str, str, tuple]]:
    n = len(cfg["down_block_types"])
    out: list[tuple[str, str, tuple]] = []
    for part in ("encoder", "decoder"):
        out += [
            (f"{part}.conv_norm_out.", f"{part}.norm_out.", ()),
            (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1.", VAE_RESNET),
            (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2.", VAE_RESNET),
            (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1.", VAE_ATTENTION),
        ]
    for i in range(n):  # the decoder's blocks are numbered from the bottom in LDM
        for j in range(cfg.get("layers_per_block", 1) + 1):
            out += [
                (f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}.", VAE_RESNET),
                (f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{n - 1 - i}.block.{j}.", VAE_RESNET),
            ]
        out += [
            (f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample.", ()),
            (f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{n - 1 - i}.upsample.", ()),
        ]
    return out


def _rename(key: str, prefixes: list[tuple[str, str, tuple]]) -> str:
    for old, new, inside in prefixes:
        if key.startswith(old):
            rest = key[len(old) :]
            for a, b in inside:
                if rest.startswith(a):
                    rest = b + rest[len(a) :]
                    break
            return new + rest
    return key


def export_single_file(folder: Path, out: Path) -> Path:
    """The SD pipeline folder as one ``.safetensors`` in the original layout, as SD 1.5
    checkpoints are shared."""
    from safetensors.torch import load_file, save_file

    def config(sub: str) -> dict:
        return json.loads((folder / sub / "config.json").read_text())

    tensors = {}
    for k, v in load_file(folder / "unet" / "diffusion_pytorch_model.safetensors").items():
        tensors["model.diffusion_model." + _rename(k, _unet_prefixes(config("unet")))] = v
    for k, v in load_file(folder / "vae" / "diffusion_pytorch_model.safetensors").items():
        k = _rename(k, _vae_prefixes(config("vae")))
        if ".mid.attn_1." in k and v.ndim == 2:  # LDM's attention projections are 1×1 convolutions
            v = v[:, :, None, None]  # (C, C) → (C, C, 1, 1)
        tensors["first_stage_model." + k] = v
    for k, v in load_file(folder / "text_encoder" / "model.safetensors").items():
        tensors["cond_stage_model.transformer." + (k if k.startswith("text_model.") else "text_model." + k)] = v
    save_file({k: v.contiguous() for k, v in tensors.items()}, out)
    return out
