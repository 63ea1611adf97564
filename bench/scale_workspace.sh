#!/usr/bin/env bash
# Build issue 11's ~180K-chunk workspace from real packages side by side (network: PyPI and npm, once).
# Usage: bash bench/scale_workspace.sh DIR   -> DIR/ws (about 13,600 files, 97 MB)
# The sdists come straight from PyPI's simple index: `pip download --no-binary` would build their metadata
# (SQLAlchemy's needs Cython compiled from source).
set -euo pipefail
out="${1:?usage: scale_workspace.sh DIR}"
mkdir -p "$out/dl" "$out/ws"
cd "$out/dl"
python3 - Django==5.1.4 ansible-core==2.17.7 SQLAlchemy==2.0.36 Twisted==24.11.0 sphinx==8.1.3 networkx==3.4.2 <<'PY'
import re, sys, urllib.request
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    page = urllib.request.urlopen(f"https://pypi.org/simple/{name.lower()}/").read().decode()
    stem = re.escape(f"-{version}.tar.gz")
    url = next(u for u in re.findall(r'href="([^"#]+)', page) if re.search(stem + "$", u))
    urllib.request.urlretrieve(url, url.rsplit("/", 1)[1])
PY
for spec in @angular/core@18.2.13 lodash@4.17.21 rxjs@7.8.1 typescript@5.6.3; do
  npm pack --silent "$spec" >/dev/null
done
cd "$out/ws"
for f in "$out"/dl/*.tar.gz "$out"/dl/*.tgz; do
  name="$(basename "$f")"; name="${name%.tar.gz}"; name="${name%.tgz}"
  mkdir -p "$name" && tar -xzf "$f" -C "$name" --strip-components=1
done
# SQLAlchemy's sdist carries its built HTML docs beside their sources (doc/build): generated pages, not source
find sqlalchemy-*/doc -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
echo "files: $(find . -type f | wc -l), $(du -sh . | cut -f1)"
