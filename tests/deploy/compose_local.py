#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""compose_local.py — docker-compose.yml made runnable on a machine without Docker Hub, for
tests/deploy/test_compose.sh; everything but the images and the published host ports stays
the file's own, and this script proves it.

  compose_local.py write ORIGINAL OUT MAP.json
      Copy ORIGINAL to OUT line by line, changing only
        - `image: X` lines: X -> MAP["images"][X] (every image of the file must be mapped);
        - published ports `- "IP:HOST:CONTAINER"`: HOST -> MAP["ports"][HOST] (every
          published port must be mapped).
      Fails when a mapping is unused or a line of those kinds is not mapped.
  compose_local.py compare ORIGINAL_CONFIG OUT_CONFIG MAP.json
      Both arguments are `docker-compose config` outputs (same project directory). After
      putting the mapped images and ports back, the two must be equal: services, networks,
      volumes, secrets, every key of every service.
"""
import json
import re
import sys

import yaml

IMAGE = re.compile(r'^(\s*image:\s*)(\S+?)(\s*)$')
PORT = re.compile(r'^(\s*-\s*")([0-9.]+):([0-9]+):([0-9]+)("\s*)$')


def write(orig, out, mapping):
    images, ports = mapping["images"], {str(k): str(v) for k, v in mapping["ports"].items()}
    used_i, used_p, lines = set(), set(), []
    for n, line in enumerate(open(orig).read().splitlines(keepends=True), 1):
        body = line.rstrip("\n")
        m = IMAGE.match(body)
        if m:
            if m.group(2) not in images:
                sys.exit("%s:%d: image %s has no local replacement" % (orig, n, m.group(2)))
            used_i.add(m.group(2))
            line = m.group(1) + images[m.group(2)] + m.group(3) + "\n"
        m = PORT.match(body)
        if m:
            if m.group(3) not in ports:
                sys.exit("%s:%d: published port %s has no replacement" % (orig, n, m.group(3)))
            used_p.add(m.group(3))
            line = "%s%s:%s:%s%s\n" % (m.group(1), m.group(2), ports[m.group(3)], m.group(4), m.group(5))
        lines.append(line)
    unused = sorted(set(images) - used_i) + sorted(set(ports) - used_p)
    if unused:
        sys.exit("mappings not found in %s: %s" % (orig, unused))
    with open(out, "w") as f:
        f.writelines(lines)


def compare(orig_cfg, out_cfg, mapping):
    a = yaml.safe_load(open(orig_cfg))
    b = yaml.safe_load(open(out_cfg))
    back_i = {v: k for k, v in mapping["images"].items()}
    back_p = {str(v): str(k) for k, v in mapping["ports"].items()}
    changed = []
    for name, svc in b.get("services", {}).items():
        if svc.get("image") in back_i:
            changed.append("%s.image %s" % (name, svc["image"]))
            svc["image"] = back_i[svc["image"]]
        ports = svc.get("ports", [])
        for i, p in enumerate(ports):
            if isinstance(p, dict):  # long syntax
                pub = str(p.get("published"))
                if pub in back_p:
                    changed.append("%s.ports %s:%s" % (name, pub, p.get("target")))
                    p["published"] = type(p["published"])(back_p[pub])
                continue
            m = re.match(r"^(.*?)([0-9]+):([0-9]+(/[a-z]+)?)$", str(p))  # [IP:]PUBLISHED:TARGET[/proto]
            if m and m.group(2) in back_p:
                changed.append("%s.ports %s:%s" % (name, m.group(2), m.group(3)))
                ports[i] = m.group(1) + back_p[m.group(2)] + ":" + m.group(3)
    if a != b:
        diff = []
        for key in sorted(set(a) | set(b)):
            if key == "services":
                for s in sorted(set(a[key]) | set(b[key])):
                    sa, sb = a[key].get(s) or {}, b[key].get(s) or {}
                    for k in sorted(set(sa) | set(sb)):
                        if sa.get(k) != sb.get(k):
                            diff.append("services.%s.%s: %s != %s" % (s, k, json.dumps(sa.get(k))[:200],
                                                                     json.dumps(sb.get(k))[:200]))
            elif a.get(key) != b.get(key):
                diff.append(key)
        sys.exit("the local compose file differs from docker-compose.yml beyond images and "
                 "ports: %s" % "; ".join(diff))
    print("same as docker-compose.yml but for: %s" % ", ".join(changed))


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("write", "compare"):
        sys.exit(__doc__)
    mapping = json.load(open(sys.argv[4]))
    (write if sys.argv[1] == "write" else compare)(sys.argv[2], sys.argv[3], mapping)


if __name__ == "__main__":
    main()
