"""misen serializers and hashers for Hugging Face: ``datasets`` datasets (Arrow, through ``save_to_disk``) and
``transformers`` models, tokenizers and configs (through ``save_pretrained``, weights as safetensors)."""

from __future__ import annotations

__all__: list[str] = []
