# SPDX-License-Identifier: MIT
"""derive.py — the field trees of tests/deploy/schemas/*.json from upstream schema files.

test_manifests.py rejects every manifest field its schema does not know (the API server would
prune it, or reject it under fieldValidation=Strict). It reads only property NAMES, as a tree:

  1            a leaf: a scalar, or a list of scalars (values are not checked)
  "*"          anything below: x-kubernetes-preserve-unknown-fields, additionalProperties (maps:
               labels, trigger metadata, resources.limits), the root `metadata` of a CRD (the API
               server checks it as ObjectMeta: test_manifests.py does so with kubernetes-1.32.json),
               a path given with --stop, or a definition left out with --only
  {name: node} an object and its known properties (a property-less object keeps no field)
  [node]       a list of objects
  {"$ref": n}  (swagger files only) definition n of the file's "definitions"

Two inputs:

  crd      CustomResourceDefinition YAML/JSON files (controller-gen output, a release bundle, a
           Helm chart's CRD template: lines starting with "{{" are dropped, other {{ }} become a
           string). One tree per kind, from spec.versions[VERSION].schema.openAPIV3Schema, keyed
           "<group>/<version> <Kind>".
             derive.py crd --version v1alpha1 --stop status --stop spec.jobTargetRef \\
                 --source kedacore/keda@v2.12.0:config/crd/bases --label "KEDA 2.12" \\
                 keda.sh_scaledobjects.yaml keda.sh_scaledjobs.yaml keda.sh_triggerauthentications.yaml \\
                 > keda-2.12.json
  swagger  Kubernetes' api/openapi-spec/swagger.json (OpenAPI v2). Definitions reachable from
           the --kind roots, "$ref" kept; --only FILE keeps the definitions it lists (one a line)
           and turns every other one into "*" (listed in header.open_definitions).
             derive.py swagger --kind apps/v1=io.k8s.api.apps.v1.Deployment ... --only defs.txt \\
                 --source kubernetes/kubernetes@<commit>:api/openapi-spec/swagger.json \\
                 --label "Kubernetes 1.32 OpenAPI" swagger.json > kubernetes-1.32.json

Every file starts with a "header" (source, version label, rules); rerun the command named in
it on the new upstream file to update a schema, then run tests/deploy/test_manifests.py.
"""
import argparse
import json
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

RULES = ("property names only; 1 = leaf (values unchecked), \"*\" = anything below (preserve-unknown-fields, "
         "additionalProperties maps, a CRD's root metadata, --stop paths, definitions left out with --only), "
         "{name: node} = object with its known properties, [node] = list of objects, {\"$ref\": n} = definition n")


def _load(path):
    with open(path, encoding="utf-8") as f:
        text = "\n".join(re.sub(r"\{\{.*?\}\}", "TEMPLATED", line) for line in f.read().splitlines()
                         if not line.lstrip().startswith("{{"))
    if path.endswith(".json"):
        return [json.loads(text)]
    return [d for d in yaml.safe_load_all(text) if d]


def crd_node(schema, path, stops, root=False):
    """Field tree of one openAPIV3Schema node; path is dotted, without list markers."""
    if path in stops:
        return "*"
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return "*"
    if root and path == "metadata":
        return "*"
    props = schema.get("properties")
    if props:
        return {k: crd_node(v, (path + "." + k) if path else k, stops) for k, v in sorted(props.items())}
    if schema.get("additionalProperties") not in (None, False):
        return "*"
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        item = crd_node(schema["items"], path, stops)
        return 1 if item == 1 else [item]
    if schema.get("type") == "object" and not schema.get("x-kubernetes-int-or-string"):
        return {}
    return 1


def derive_crd(args):
    kinds = {}
    for path in args.files:
        for doc in _load(path):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for ver in spec["versions"]:
                if args.version and ver["name"] != args.version:
                    continue
                schema = ver["schema"]["openAPIV3Schema"]
                tree = {k: crd_node(v, k, set(args.stop), root=True)
                        for k, v in sorted(schema.get("properties", {}).items())}
                kinds["%s/%s %s" % (spec["group"], ver["name"], spec["names"]["kind"])] = tree
    return {"header": header(args, not_descended=sorted(args.stop)), "kinds": kinds}


def swagger_node(schema, defs, keep):
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        target = defs.get(name, {})
        if not target.get("properties"):  # Quantity, IntOrString, Time (strings); FieldsV1, RawExtension
            return "*" if target.get("type") == "object" else 1
        return {"$ref": name} if name in keep else "*"
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return "*"
    props = schema.get("properties")
    if props:
        return {k: swagger_node(v, defs, keep) for k, v in sorted(props.items())}
    if schema.get("additionalProperties") not in (None, False):
        return "*"
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        item = swagger_node(schema["items"], defs, keep)
        return 1 if item == 1 else [item]
    return 1


def derive_swagger(args):
    defs = json.load(open(args.files[0], encoding="utf-8"))["definitions"]
    roots = [k.split("=", 1) for k in args.kind]
    only = None
    if args.only:
        only = {line.strip() for line in open(args.only) if line.strip() and not line.startswith("#")}
    # Walk the $refs from the roots: a definition with properties is kept (and walked) when
    # --only lists it (or there is no --only), else it becomes "*" and the walk stops there.
    root_names = {name for _, name in roots}
    keep, opened, todo = set(), set(), list(root_names)
    while todo:
        name = todo.pop()
        if name in keep or name in opened or not defs.get(name, {}).get("properties"):
            continue
        if only is not None and name not in only:
            opened.add(name)
            continue
        keep.add(name)
        props = defs[name]["properties"]
        if name in root_names:  # a kind's status is the server's: not walked, kept as "*"
            props = {k: v for k, v in props.items() if k != "status"}
        text = json.dumps(props)
        todo += [r.split('"')[0].split("/")[-1] for r in text.split('"$ref": "')[1:]]
    out = {n: swagger_node(defs[n], defs, keep) for n in sorted(keep)}
    for _, name in roots:  # a kind's status is the server's, never the manifest's
        if isinstance(out.get(name), dict) and "status" in out[name]:
            out[name]["status"] = "*"
    kinds = {"%s %s" % (gv, name.split(".")[-1]): {"$ref": name} for gv, name in roots}
    return {"header": header(args, open_definitions=sorted(opened)), "kinds": kinds, "definitions": out}


def header(args, **extra):
    h = {"source": args.source, "label": args.label, "derived_by": "tests/deploy/schemas/derive.py " + args.mode,
         "rules": RULES}
    h.update(extra)
    return h


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("crd", "swagger"))
    ap.add_argument("files", nargs="+")
    ap.add_argument("--source", required=True, help="repo@commit-or-tag:path the files come from")
    ap.add_argument("--label", required=True, help='version label used in messages, e.g. "KEDA 2.12"')
    ap.add_argument("--version", help="crd: the served version to read (default: all)")
    ap.add_argument("--stop", action="append", default=[], help="crd: dotted path kept as \"*\"")
    ap.add_argument("--kind", action="append", default=[], help="swagger: group/version=definition")
    ap.add_argument("--only", help="swagger: file listing the definitions to keep")
    args = ap.parse_args(argv)
    if args.mode == "crd" and yaml is None:
        sys.exit("python3-yaml is needed for CRD YAML")
    out = derive_crd(args) if args.mode == "crd" else derive_swagger(args)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
