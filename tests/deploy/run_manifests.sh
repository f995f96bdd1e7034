#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run test_manifests.py with a python3 that has PyYAML (Debian's python3-yaml lives in
# /usr/bin/python3's path; a pyenv python3 first in PATH may lack it). 77 = skip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import yaml' 2>/dev/null; then
        exec "$py" "$here/test_manifests.py"
    fi
done
echo "SKIP: no python3 with PyYAML (deploy/local/deps.sh installs python3-yaml)"
exit 77
