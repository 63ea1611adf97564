#!/usr/bin/env bash
# Build (once) and install llama-cpp-python into the given Python, portable across x86-64 CPUs.
#   bash scripts/build-llama.sh .venv/bin/python
# Why not a plain `pip install llama-cpp-python`: that compiles with -march=native, so a wheel built on
# one machine carries the build CPU's instructions. On an Intel Xeon with AMX that build died at the first
# embedding (SIGILL/SIGSEGV in llama.cpp's AMX kernel); a wheel with AVX-512 would die on an AMD EPYC.
# The default here is the x86-64-v3 set (AVX, AVX2, FMA, F16C, BMI2) with AVX-512 and AMX off: every
# x86-64 CPU sold since ~2015 runs it. Set CMAKE_ARGS yourself to choose another set (the wheel cache is
# keyed by the flags, so switching never reuses a wheel built with other flags).
#   bash scripts/build-llama.sh --print-cmake-args    # the flags, for a plain `pip install` (README)
#   bash scripts/build-llama.sh --cache-key PYTHON     # the wheel cache key (scripts/install-test.sh)
set -euo pipefail
mode=install
case "${1:-}" in
  --print-cmake-args) mode=print ;;
  --cache-key) mode=key; shift ;;
esac
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
if [[ -z "${CMAKE_ARGS:-}" ]]; then
  case "$(uname -m)" in
    x86_64|amd64)
      CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
      CMAKE_ARGS+=" -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
      CMAKE_ARGS+=" -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
      ;;
    *) CMAKE_ARGS="-DGGML_NATIVE=OFF" ;;  # aarch64 etc.: the compiler's baseline for the architecture
  esac
fi
if [[ $mode == print ]]; then
  printf '%s\n' "$CMAKE_ARGS"
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
