"""A BF16 GGUF made from a Q8_0 one (flops9, session 9): each Q8_0 matrix dequantized exactly, rounded to BF16.

    python bench/derive_bf16.py SRC.gguf DST.gguf all|keep    # keep: token_embd stays Q8_0 (only get_rows reads it)

Measured in BENCHMARKS.md "flops9 (session 9): addendum": as fast as a BF16 file from F32 within the spread, and
closer to F32's vectors than Q8_0's own. A bench tool, not the product's provisioning.
"""

from __future__ import annotations

import sys
from typing import Any

import gguf
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter


def derive(src: str, dst: str, keep_token_embd: bool) -> None:
    reader = GGUFReader(src)
    writer = GGUFWriter(dst, reader.fields["general.architecture"].contents())
    for field in reader.fields.values():
        if field.name == "general.architecture" or field.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    tensors: list[tuple[str, Any, GGMLQuantizationType]] = []
    for t in reader.tensors:
        if t.tensor_type == GGMLQuantizationType.Q8_0 and not (keep_token_embd and t.name == "token_embd.weight"):
            f32 = gguf.quants.dequantize(t.data, GGMLQuantizationType.Q8_0)  # exact: d (f16) x q (int8)
            tensors.append((t.name, gguf.quants.quantize(f32, GGMLQuantizationType.BF16), GGMLQuantizationType.BF16))
        else:
            tensors.append((t.name, t.data, t.tensor_type))
    for name, data, kind in tensors:
        writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, data, _ in tensors:
        writer.write_tensor_data(data)
    writer.close()


if __name__ == "__main__":
    derive(sys.argv[1], sys.argv[2], sys.argv[3] == "keep")
