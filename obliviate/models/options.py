"""Model-side options as plain data (no torch here: the CLI builds them for --help): LoRA hyper-parameters and the
tiny model presets."""
from __future__ import annotations

from dataclasses import dataclass

from obliviate.files import check_int, check_real

# Every attention and MLP projection of Qwen2 / Qwen2.5-VL's language model. The vision tower's modules have other
# names (qkv, proj, fc1/fc2 in the VL merger), so this list never touches it.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraOptions:
    """LoRA hyper-parameters. Defaults from open-unlearning / OFFSIDE (r 8..16, alpha 2r)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self):
        """Constructing one validates it."""
        check_int("lora r", self.r, minimum=1)
        check_real("lora alpha", self.alpha, above=0)
        check_real("lora dropout", self.dropout, at_least=0, below=1)
        if not self.targets or not all(isinstance(t, str) and t for t in self.targets):
            raise ValueError(f"lora targets must be module names, got {self.targets!r}")


# Tiny presets. head_dim = hidden / heads = 32 in all of them, so the M-RoPE sections (`tiny._mrope_section`) sum to 16 = head_dim/2
# (temporal, height, width; Qwen's 7B uses [16, 24, 24] for head_dim 128: the same 1:1.5:1.5 shape).
PRESETS = {
    "test": dict(hidden=64, layers=2, heads=2, kv_heads=1, ffn=128, vision_hidden=64, vision_heads=2),
    "small": dict(hidden=128, layers=4, heads=4, kv_heads=2, ffn=512, vision_hidden=128, vision_heads=4),
    "demo": dict(hidden=256, layers=4, heads=8, kv_heads=4, ffn=1024, vision_hidden=128, vision_heads=4),
}
