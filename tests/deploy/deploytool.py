# SPDX-License-Identifier: MIT
"""deploytool.py — what tests/deploy reads out of the deployment files and the code.

A small kustomize-like renderer (resources, labels, images, JSON6902 patches: exactly the
features deploy/k8s uses), the unknown-field walker over the field trees of tests/deploy/schemas
(unknown_fields), the facts the manifests must agree with (key prefix, key formats,
job kinds, exported metric names, the drill adapter's and the worker's API calls), and a command-line entry
used by test_runtime.sh:

  deploytool.py env   SRC KIND NAME   print the container's environment as KEY=VALUE lines
                                      (envFrom ConfigMaps resolved) of a rendered Deployment,
                                      ScaledJob (NAME) or compose service (KIND = compose)
  deploytool.py args  SRC KIND NAME   the container's args / command, one per line
  deploytool.py probe SRC NAME WHICH  "path port periodSeconds failureThreshold" of a probe
  deploytool.py grace SRC KIND NAME   terminationGracePeriodSeconds / stop_grace_period (s)
  deploytool.py schedules SRC         schedules.json of the ConfigMap
  deploytool.py acl SRC PREFIX SUFFIX the ACL lines, prefix replaced, users renamed <user>SUFFIX
"""
import copy
import json
import os
import re
import sys

import yaml


# ---- YAML ----

def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---- Field schemas (tests/deploy/schemas/*.json, written by schemas/derive.py) ----

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


def load_schema(name):
    """A field-tree file of tests/deploy/schemas: {"header", "kinds", ["definitions"]}."""
    with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def _deref(node, defs):
    while isinstance(node, dict) and len(node) == 1 and "$ref" in node:
        node = defs.get(node["$ref"], "*")
    return node


def unknown_fields(value, node, defs=None, path=""):
    """[(path, why)] for every field of value that the field tree node does not know.

    Trees as schemas/derive.py writes them: 1 a leaf (value not checked), "*" anything below,
    {name: node} an object's known properties, [node] a list of objects, {"$ref": name} the
    definition name of defs. A null value is an unset field: nothing to check."""
    defs = defs or {}
    node = _deref(node, defs)
    if node == "*" or node == 1 or value is None:
        return []
    if isinstance(node, list):
        if not isinstance(value, list):
            return [(path, "a list is expected here, not %s" % type(value).__name__)]
        out = []
        for i, item in enumerate(value):
            out += unknown_fields(item, node[0], defs, "%s[%d]" % (path, i))
        return out
    if not isinstance(value, dict):
        return [(path, "an object is expected here, not %s" % type(value).__name__)]
    out = []
    for key, sub in value.items():
        where = "%s.%s" % (path, key) if path else str(key)
        if key not in node:
            out.append((where, "unknown"))
        else:
            out += unknown_fields(sub, node[key], defs, where)
    return out


# ---- kustomize-like rendering ----

def _pointer(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json6902(obj, ops):
    obj = copy.deepcopy(obj)
    for op in ops:
        parts = _pointer(op["path"])
        parent = obj
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(idx, op["value"])
            elif kind == "replace":
                parent[idx] = op["value"]
            elif kind == "remove":
                del parent[idx]
            else:
                raise ValueError("unsupported op " + kind)
        else:
            if kind in ("add", "replace"):
                if kind == "replace" and last not in parent:
                    raise KeyError("replace of a missing path " + op["path"])
                parent[last] = op["value"]
            elif kind == "remove":
                del parent[last]
            else:
                raise ValueError("unsupported op " + kind)
    return obj


def _group(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def _matches(obj, target):
    if "kind" in target and obj.get("kind") != target["kind"]:
        return False
    if "name" in target and obj["metadata"].get("name") != target["name"]:
        return False
    if "group" in target and _group(obj.get("apiVersion", "")) != target["group"]:
        return False
    if "namespace" in target and obj["metadata"].get("namespace") != target["namespace"]:
        return False
    return True


def _containers(obj):
    spec = obj.get("spec", {})
    if obj.get("kind") == "ScaledJob":
        pod = spec.get("jobTargetRef", {}).get("template", {}).get("spec", {})
    elif obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        pod = spec.get("template", {}).get("spec", {})
    else:
        return []
    return pod.get("containers", []) + pod.get("initContainers", [])


def render(directory, seen=None):
    """Objects of the kustomization in directory (recursively)."""
    kfile = os.path.join(directory, "kustomization.yaml")
    kust = load_docs(kfile)[0]
    objs = []
    for res in kust.get("resources", []):
        path = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(path):
            objs.extend(render(path))
        else:
            objs.extend(load_docs(path))
    for lab in kust.get("labels", []):
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab.get("pairs", {}))
    for img in kust.get("images", []):
        for o in objs:
            for c in _containers(o):
                name = c.get("image", "")
                base = re.split(r"[:@]", name, maxsplit=1)[0]
                if base == img["name"]:
                    new = img.get("newName", base)
                    tag = img.get("newTag")
                    c["image"] = new + (":" + tag if tag else "")
    for p in kust.get("patches", []):
        ops = yaml.safe_load(p["patch"])
        target = p.get("target", {})
        hits = 0
        for i, o in enumerate(objs):
            if _matches(o, target):
                objs[i] = json6902(o, ops)
                hits += 1
        if hits == 0:
            raise ValueError("%s: patch target %r matches nothing" % (kfile, target))
    return objs


# ---- Facts from the code ----

def src_read(src, rel):
    with open(os.path.join(src, rel), encoding="utf-8") as f:
        return f.read()


def default_prefix(src):
    m = re.search(r'\{"OSP_PREFIX",\s*CFG_STR,\s*"([^"]*)"', src_read(src, "common/config.c"))
    if not m:
        raise ValueError("OSP_PREFIX default not found in common/config.c")
    return m.group(1)


def key_formats(src):
    """The queue and in-flight key suffixes the Lua scripts build: P .. ':queue:' .. kind."""
    lua_dir = os.path.join(src, "common", "lua")
    text = "".join(src_read(src, os.path.join("common", "lua", f)) for f in sorted(os.listdir(lua_dir)))
    found = set(re.findall(r"P \.\. '(:[a-z]+:)' \.\. kind", text))
    return found


def job_kinds(src):
    reg = src_read(src, "jobs/registry.c")
    body = reg[reg.index("kinds[] = {"):]
    body = body[:body.index("};")]
    syms = re.findall(r"&(job_kind_\w+)", body)
    names = []
    for root, _, files in os.walk(os.path.join(src, "jobs")):
        for f in files:
            if not f.endswith(".c"):
                continue
            text = open(os.path.join(root, f), encoding="utf-8").read()
            for sym in syms:
                m = re.search(r"const struct job_kind " + sym + r"\s*=\s*\{.*?\.name\s*=\s*\"([^\"]+)\"", text, re.S)
                if m:
                    names.append((syms.index(sym), m.group(1)))
    names.sort()
    if len(names) != len(syms):
        raise ValueError("could not resolve every kind in jobs/registry.c: %r" % syms)
    return [n for _, n in names]


def exported_metrics(src):
    """Metric names created in the programs' sources, with histogram series names."""
    names = set()
    for d in ("common", "scheduler", "worker", "jobs", "cli"):
        for root, _, files in os.walk(os.path.join(src, d)):
            for f in files:
                if not f.endswith(".c") or f == "metrics.c":
                    continue
                text = open(os.path.join(root, f), encoding="utf-8").read()
                for typ, name in re.findall(r"osp_metric_(counter|gauge|histogram)\(\s*\w+,\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"", text):
                    names.add(name)
                    if typ == "histogram":
                        names.update({name + "_bucket", name + "_sum", name + "_count"})
    return names


def drill_api_calls(src):
    """(verb, resource) pairs of jobs/drill/k8s.c's requests, as RBAC names them."""
    path = os.path.join(src, "jobs", "drill", "k8s.c")
    text = open(path, encoding="utf-8").read()
    plurals = sorted(set(re.findall(r'"(stresschaos|networkchaos|podchaos|iochaos|timechaos)"', text)))
    pairs = set()
    # Each request: drill_k8s_request(k, METHOD, PATHVAR, ...). METHOD is a literal or the
    # variable `method`, whose literals are collected in the same function.
    funcs = re.split(r"\n(?=static |int |void |bool )", text)
    for fn in funcs:
        for meth, var in re.findall(r"drill_k8s_request\(k,\s*(\"[A-Z]+\"|\w+),\s*(\w+)", fn):
            if meth.startswith('"'):
                fmts = re.findall(r"\b" + var + r"\s*=\s*osp_xasprintf\(\"([^\"]+)\"", fn)
                pairs.update((meth.strip('"'), f) for f in fmts)
                continue
            # A method variable: scan the function in order, pairing each path assignment with
            # the method in force in its branch (default from the declaration, reset at else).
            default = current = None
            for tok in re.finditer(r"const char \*" + meth + r"\s*=\s*\"([A-Z]+)\"|"
                                   r"\b" + meth + r"\s*=\s*\"([A-Z]+)\"|(\}\s*else\s*\{)|"
                                   r"\b" + var + r"\s*=\s*osp_xasprintf\(\"([^\"]+)\"", fn):
                decl, assign, els, fmt = tok.groups()
                if decl:
                    default = current = decl
                elif assign:
                    current = assign
                elif els:
                    current = default
                elif fmt and current:
                    pairs.add((current, fmt))
    return _rbac_names(pairs, plurals)


def worker_api_calls(src):
    """(verb, resource) pairs of worker/podcost.c's requests, as RBAC names them.

    The worker makes its requests with libcurl directly: the method is the CURLOPT_CUSTOMREQUEST
    literal, the path the osp_xasprintf("%s/api/...") that builds the URL from the API base."""
    text = src_read(src, os.path.join("worker", "podcost.c"))
    methods = set(re.findall(r"CURLOPT_CUSTOMREQUEST,\s*\"([A-Z]+)\"", text))
    fmts = set(re.findall(r"osp_xasprintf\(\"%s(/apis?/[^\"]+)\"", text))
    if len(methods) > 1:
        raise ValueError("worker/podcost.c: several methods %r; pair them with their paths here" % methods)
    return _rbac_names({(m, f) for m in methods for f in fmts}, [])


def bench_scale_api_calls(src):
    """(group, resource, verb) of jobs/benchmark/scale.c's requests, as RBAC names them.

    Requests are osp_kube_request(sc->kc, "METHOD", sc->PATH, ...); each PATH field is set once
    with osp_xasprintf("/apis/...") where the scaler is made."""
    text = src_read(src, os.path.join("jobs", "benchmark", "scale.c"))
    fmts = dict(re.findall(r"sc->(\w+)\s*=\s*osp_xasprintf\(\s*\"(/apis?/[^\"]+)\"", text))
    pairs = set()
    for meth, var in re.findall(r"osp_kube_request\(\s*sc->kc,\s*\"([A-Z]+)\",\s*sc->(\w+)", text):
        if var not in fmts:
            raise ValueError("jobs/benchmark/scale.c: request path sc->%s is not an osp_xasprintf literal" % var)
        pairs.add((meth, fmts[var]))
    return _rbac_names(pairs, [])


def _rbac_names(pairs, plurals):
    """(method, path format) -> (group, resource[/subresource], verb)."""
    out = set()
    for m, fmt in pairs:
        path = fmt.split("?")[0]
        if path == "%s/%s":  # "<collection path>/<name>": a named object of the chaos collection
            res_list, named = plurals, True
            group = "chaos-mesh.org"
        else:
            segs = [s for s in path.split("/") if s]
            if segs[0] == "api":
                group, rest = "", segs[2:]
            else:
                group, rest = segs[1], segs[3:]
            # rest: namespaces, %s, resource, [name], [subresource]
            rest = rest[2:]
            resource = rest[0]
            res_list = plurals if resource == "%s" else [resource]
            named = len(rest) >= 2
            if len(rest) == 3:
                res_list = [r + "/" + rest[2] for r in res_list]
        verb = {"GET": "get" if named else "list", "POST": "create", "DELETE": "delete",
                "PUT": "update", "PATCH": "patch"}[m]
        for r in res_list:
            out.add((group, r, verb))
    return out


def role_grants(rbac_docs):
    grants = set()
    for d in rbac_docs:
        if d.get("kind") != "Role":
            continue
        for rule in d.get("rules", []):
            for g in rule.get("apiGroups", []):
                for r in rule.get("resources", []):
                    for v in rule.get("verbs", []):
                        grants.add((g, r, v))
    return grants


# ---- Containers, env, probes ----

def find(objs, kind, name):
    for o in objs:
        if o.get("kind") == kind and o["metadata"]["name"] == name:
            return o
    raise KeyError("%s/%s not found" % (kind, name))


def pod_spec(obj):
    if obj["kind"] == "ScaledJob":
        return obj["spec"]["jobTargetRef"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def container_env(objs, obj):
    c = pod_spec(obj)["containers"][0]
    env = {}
    for ef in c.get("envFrom", []):
        cm = find(objs, "ConfigMap", ef["configMapRef"]["name"])
        env.update({k: str(v) for k, v in cm.get("data", {}).items()})
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            env[e["name"]] = "<" + json.dumps(e["valueFrom"], sort_keys=True) + ">"
    return env


def compose_service(src, name):
    doc = load_docs(os.path.join(src, "docker-compose.yml"))[0]
    return doc["services"][name]


def duration_s(text):
    text = str(text)
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)(h|ms|m|s|us)?", text):
        total += float(num) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "": 1}[unit]
    return total


def _rendered(src):
    return render(os.path.join(src, "deploy", "k8s", "overlays", "example"))


def _obj(src, kind, name):
    if kind == "ScaledJob":
        return find(load_docs(os.path.join(src, "deploy", "keda", "scaledjobs.yaml")), kind, name)
    return find(_rendered(src), kind, name)


def main(argv):
    cmd, src = argv[1], argv[2]
    if cmd == "env":
        kind, name = argv[3], argv[4]
        if kind == "compose":
            env = {k: str(v) for k, v in (compose_service(src, name).get("environment") or {}).items()}
        else:
            objs = _rendered(src)
            env = container_env(objs, _obj(src, kind, name))
        for k in sorted(env):
            print("%s=%s" % (k, env[k]))
    elif cmd == "args":
        kind, name = argv[3], argv[4]
        if kind == "compose":
            args = compose_service(src, name).get("command") or []
        else:
            args = pod_spec(_obj(src, kind, name))["containers"][0].get("args", [])
        for a in args:
            print(a)
    elif cmd == "probe":
        name, which = argv[3], argv[4]
        c = pod_spec(_obj(src, "Deployment", name))["containers"][0]
        p = c[which]
        port = p["httpGet"]["port"]
        if not isinstance(port, int):
            port = [x["containerPort"] for x in c["ports"] if x["name"] == port][0]
        print(p["httpGet"]["path"], port, p.get("periodSeconds", 10), p.get("failureThreshold", 3))
    elif cmd == "grace":
        kind, name = argv[3], argv[4]
        if kind == "compose":
            print(int(duration_s(compose_service(src, name).get("stop_grace_period", "10s"))))
        else:
            print(pod_spec(_obj(src, kind, name)).get("terminationGracePeriodSeconds", 30))
    elif cmd == "schedules":
        print(find(_rendered(src), "ConfigMap", "opspool-schedules")["data"]["schedules.json"])
    elif cmd == "acl":
        prefix, suffix = argv[3], argv[4]
        for line in open(os.path.join(src, "deploy", "keda", "redis-users.acl"), encoding="utf-8"):
            line = line.strip()
            if not line.startswith("user ") or line.startswith("user default "):
                continue
            words = line.split()
            words[1] += suffix
            print(" ".join(words[1:]).replace("{opspool}", prefix))
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
