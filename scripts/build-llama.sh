#!/usr/bin/env bash
# Build (once) and install llama-cpp-python into the given Python, portable across x86-64 CPUs.
#   bash scripts/build-llama.sh .venv/bin/python
# Why not a plain `pip install llama-cpp-python`: that compiles with -march=native, so a wheel carries the
# build CPU's instructions. On an Intel Xeon with AMX that build died at the first embedding (SIGILL/SIGSEGV
# in llama.cpp's AMX kernel); a wheel with AVX-512 dies on a CPU without it (a venv or wheel cache shared
# between machines, a CI image built on one host and run on another). So the flags are chosen here:
# - "portable", the default: the x86-64-v3 set (AVX, AVX2, FMA, F16C, BMI2), AVX-512 and AMX off, which
#   every x86-64 CPU sold since ~2015 runs;
# - "avx512", only when asked (SEMCODE_LLAMA_CPU=avx512) and only on a CPU that has avx512f/cd/vl/dq/bw:
#   + AVX-512 and VBMI/VNNI/BF16 where the CPU has them (+13-33% embedding throughput on an AMD EPYC,
#   BENCHMARKS.md "flops (session 5)"). Such a build runs on this CPU family only; the engine checks the
#   marker written below against the CPU before loading llama.cpp and says so instead of dying of SIGILL.
# AMX is always off. Set CMAKE_ARGS yourself to choose another set. The wheel cache is keyed by the flags,
# so a machine never reuses a wheel built with other flags.
#   bash scripts/build-llama.sh --print-cmake-args    # the flags, for a plain `pip install` (README)
#   bash scripts/build-llama.sh --print-requires      # the /proc/cpuinfo flags a build with them needs
#   bash scripts/build-llama.sh --cache-key PYTHON     # the wheel cache key (scripts/install-test.sh)
# SEMCODE_CPUINFO=FILE reads that file instead of /proc/cpuinfo (tests).
set -euo pipefail
mode=install
case "${1:-}" in
  --print-cmake-args) mode=print ;;
  --print-requires) mode=requires ;;
  --cache-key) mode=key; shift ;;
esac
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
# (`|| true`: no cpuinfo, or no flags line, means the portable set, not an exit under `set -e -o pipefail`)
cpu_flags=" $({ grep -m1 -E '^flags[[:space:]]*:' "${SEMCODE_CPUINFO:-/proc/cpuinfo}" 2>/dev/null || true; } | cut -d: -f2) "
has() { for f in "$@"; do [[ $cpu_flags == *" $f "* ]] || return 1; done; }
on_off() { if has "$1"; then echo ON; else echo OFF; fi; }
requires=""  # the cpuinfo flags the chosen build runs on (the marker the engine checks)
if [[ -z "${CMAKE_ARGS:-}" ]]; then
  case "$(uname -m)" in
    x86_64|amd64)
      target="${SEMCODE_LLAMA_CPU:-portable}"
      avx512=(avx512f avx512cd avx512vl avx512dq avx512bw)
      if [[ $target == avx512 ]] && ! has avx avx2 fma f16c bmi2 "${avx512[@]}"; then
        echo "build-llama.sh: SEMCODE_LLAMA_CPU=avx512 needs a CPU with ${avx512[*]}; this one lacks some" >&2
        exit 2
      fi
      CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
      requires="pni ssse3 avx avx2 fma f16c bmi2"
      case "$target" in
        avx512)
          vbmi=$(on_off avx512vbmi) vnni=$(on_off avx512_vnni) bf16=$(on_off avx512_bf16)
          CMAKE_ARGS+=" -DGGML_AVX512=ON -DGGML_AVX512_VBMI=$vbmi -DGGML_AVX512_VNNI=$vnni -DGGML_AVX512_BF16=$bf16"
          requires+=" ${avx512[*]}"
          [[ $vbmi == ON ]] && requires+=" avx512vbmi"
          [[ $vnni == ON ]] && requires+=" avx512_vnni"
          [[ $bf16 == ON ]] && requires+=" avx512_bf16"
          ;;
        portable)
          CMAKE_ARGS+=" -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
          ;;
        *) echo "build-llama.sh: SEMCODE_LLAMA_CPU must be portable or avx512, not '$target'" >&2; exit 2 ;;
      esac
      # AMX always off: llama.cpp's AMX kernel crashed on an Intel Xeon (see the top of this file).
      CMAKE_ARGS+=" -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
      ;;
    *) CMAKE_ARGS="-DGGML_NATIVE=OFF" ;;  # aarch64 etc.: the compiler's baseline for the architecture
  esac
fi
if [[ $mode == print ]]; then
  printf '%s\n' "$CMAKE_ARGS"
  exit 0
fi
if [[ $mode == requires ]]; then
  printf '%s\n' "$requires"
  exit 0
fi
PY="${1:?usage: build-llama.sh PYTHON}"
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
key="$(printf '%s|%s|%s' "$VERSION" "$CMAKE_ARGS" "$("$PY" -c 'import sys; print(sys.implementation.cache_tag)')" \
  | sha1sum | cut -c1-12)"
if [[ $mode == key ]]; then
  printf '%s\n' "$key"
  exit 0
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/semcode/wheels/llama-$key"
marker="$("$PY" -c 'import sys; print(sys.prefix)')/semcode-llama-build.txt"

if [[ -f "$marker" && "$(cat "$marker")" == "$key" ]] && "$PY" -c "import llama_cpp" 2>/dev/null; then
  exit 0
fi
if ! compgen -G "$cache/llama_cpp_python-*.whl" >/dev/null; then
  echo "setup: building llama-cpp-python $VERSION (about 7 minutes on 2 cores, once); CMAKE_ARGS=$CMAKE_ARGS" >&2
  tmp="$cache.tmp.$$"
  rm -rf "$tmp"
  "$PY" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
    "llama-cpp-python==$VERSION" -w "$tmp"
  mkdir -p "$cache"
  mv "$tmp"/llama_cpp_python-*.whl "$cache"/
  rm -rf "$tmp"
  printf '%s\n' "$CMAKE_ARGS" >"$cache/CMAKE_ARGS"
fi
"$PY" -m pip install --quiet --force-reinstall --no-deps "$cache"/llama_cpp_python-*.whl
"$PY" -m pip install --quiet "llama-cpp-python==$VERSION" --no-index --find-links "$cache" 2>/dev/null \
  || "$PY" -m pip install --quiet "numpy>=1.26" "typing-extensions>=4.5" "diskcache>=5.6" "jinja2>=2.11.3"
printf '%s\n' "$key" >"$marker"
# What this build needs from a CPU, beside the library it describes (its size tells a marker left behind
# by a later plain `pip install` from a current one): engine/models/cpu_build.py reads it before llama.cpp
# is loaded. A custom CMAKE_ARGS records no requirement (we cannot tell what it enables).
"$PY" - "$requires" "$CMAKE_ARGS" <<'PYEOF'
import importlib.util, json, pathlib, sys
spec = importlib.util.find_spec("llama_cpp")
lib = pathlib.Path(list(spec.submodule_search_locations)[0]) / "lib" / "libggml-cpu.so"
marker = {"requires": sys.argv[1].split(), "cmake_args": sys.argv[2], "lib": str(lib),
          "lib_size": lib.stat().st_size if lib.exists() else -1}
(pathlib.Path(sys.prefix) / "semcode-llama-cpu.json").write_text(json.dumps(marker) + "\n")
PYEOF
