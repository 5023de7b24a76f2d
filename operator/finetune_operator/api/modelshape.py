"""The shape of a decoder-only transformer, read from its Hugging Face `config.json`, and its parameter counts.

Pure: the memory plan (`memoryplan`) sizes a job from this before any weight is loaded, and the docs' sizing
table is computed from the published configs of Llama 3.1 8B and 70B (`LLAMA_3_1_8B`, `LLAMA_3_1_70B`).
Counts are exact for the Llama family (RMSNorm, gated MLP, grouped-query attention, no biases) and GPT-2
(LayerNorm, learned positions, biases); other families are read through the same key aliases and counted as
the nearest of the two, which is within a few percent for the dense models people fine-tune. A
mixture-of-experts config counts every expert's MLP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Families whose MLP is gated (gate, up and down projections: SwiGLU/GeGLU) although their activation is not silu.
_GATED_FAMILIES = frozenset({"gemma", "gemma2", "gemma3_text", "phi3"})
# Families with learned absolute position embeddings and biases on every linear layer and norm.
_GPT2_FAMILIES = frozenset({"gpt2"})


class UnsupportedConfig(ValueError):
    """config.json lacks a field the plan needs (not a decoder-only transformer it knows how to count)."""


def _first(config: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if config.get(name) is not None:
            return config[name]
    return None


def _required_int(config: Mapping[str, Any], *names: str) -> int:
    value = _first(config, *names)
    if not isinstance(value, int) or value <= 0:
        raise UnsupportedConfig(f"config.json has no positive integer {' / '.join(names)}")
    return value


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    intermediate_size: int
    layers: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    gated_mlp: bool
    experts: int = 1
    learned_positions: int = 0
    """Rows of a learned position embedding (GPT-2's n_positions); 0 for rotary embeddings."""
    biases: bool = False

    @property
    def linear_shapes(self) -> tuple[tuple[int, int], ...]:
        """(in, out) of every nn.Linear in one decoder layer: what LoRA adapts and bitsandbytes quantizes."""
        h, kv = self.hidden_size, self.kv_heads * self.head_dim
        q = self.attention_heads * self.head_dim
        attention = ((h, q), (h, kv), (h, kv), (q, h))
        mlp_matrices = 3 if self.gated_mlp else 2
        mlp = ((h, self.intermediate_size),) * (mlp_matrices - 1) + ((self.intermediate_size, h),)
        return attention + mlp * self.experts

    @property
    def layer_linear_parameters(self) -> int:
        weights = sum(fan_in * fan_out for fan_in, fan_out in self.linear_shapes)
        return weights + (sum(fan_out for _, fan_out in self.linear_shapes) if self.biases else 0)

    @property
    def linear_parameters(self) -> int:
        """Parameters of the decoder layers' linear projections (the quantizable bulk of the model)."""
        return self.layers * self.layer_linear_parameters

    @property
    def other_parameters(self) -> int:
        """Embeddings, the output head (when not tied), position embeddings and norms: bitsandbytes leaves them be."""
        norm = 2 * self.hidden_size if self.biases else self.hidden_size  # LayerNorm has a bias, RMSNorm not
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        router = self.hidden_size * self.experts if self.experts > 1 else 0
        per_layer = 2 * norm + router
        return embeddings + self.learned_positions * self.hidden_size + self.layers * per_layer + norm

    @property
    def parameters(self) -> int:
        return self.linear_parameters + self.other_parameters

    def lora_parameters(self, rank: int) -> int:
        """Adapter parameters of LoRA on every linear layer of the decoder (PEFT's all-linear): r x (in + out) each."""
        return self.layers * sum(rank * (fan_in + fan_out) for fan_in, fan_out in self.linear_shapes)


def shape_from_config(config: Mapping[str, Any]) -> ModelShape:
    """The shape described by a Hugging Face config.json (Llama/Mistral/Qwen/Gemma/GPT-2 key spellings)."""
    text = config.get("text_config")
    if isinstance(text, Mapping):  # multimodal wrappers: the language model's config
        config = text
    hidden = _required_int(config, "hidden_size", "n_embd", "d_model")
    heads = _required_int(config, "num_attention_heads", "n_head")
    model_type = str(config.get("model_type", ""))
    gpt2 = model_type in _GPT2_FAMILIES
    activation = str(_first(config, "hidden_act", "hidden_activation", "activation_function") or "")
    return ModelShape(
        hidden_size=hidden,
        intermediate_size=int(_first(config, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden),
        layers=_required_int(config, "num_hidden_layers", "n_layer"),
        attention_heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=int(config.get("head_dim") or hidden // heads),
        vocab_size=_required_int(config, "vocab_size"),
        # transformers' own default: tied unless the config says otherwise.
        tied_embeddings=bool(config.get("tie_word_embeddings", True)),
        gated_mlp=not gpt2 and (activation == "silu" or model_type in _GATED_FAMILIES),
        experts=int(_first(config, "num_local_experts", "num_experts") or 1),
        learned_positions=int(config.get("n_positions") or 0) if gpt2 else 0,
        biases=gpt2 or bool(config.get("attention_bias")),
    )


def _llama_3_1(hidden: int, intermediate: int, layers: int, heads: int) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": False,
    }


# The fields of meta-llama/Llama-3.1-8B and -70B's config.json that the plan reads (8.03B and 70.6B parameters).
LLAMA_3_1_8B = _llama_3_1(4096, 14336, 32, 32)
LLAMA_3_1_70B = _llama_3_1(8192, 28672, 80, 64)
