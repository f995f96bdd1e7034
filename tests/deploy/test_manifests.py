# SPDX-License-Identifier: MIT
"""Offline validation of everything under deploy/ plus docker-compose.yml (CTest label deploy).

Exit 0 all good, 1 a check failed, 77 a required tool (python3-yaml, yamllint,
docker-compose) is missing: deploy/local/deps.sh installs them.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:  # pragma: no cover
    print("SKIP: python3-yaml missing (deploy/local/deps.sh installs it)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploytool as dt  # noqa: E402

SRC = os.environ.get("OSP_SRC_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("OSP_BIN_DIR", "")
FAILS = []
NOK = 0

# The drill Role grants exactly the adapter's calls (deploy/k8s/drill-rbac/drill-rbac.yaml): nothing extra,
# not even a read an operator might like; operators use their own identity.

# Required fields per kind (dotted paths; [] = non-empty list).
SCHEMA = {
    "Namespace": [],
    "ServiceAccount": [],
    "ConfigMap": ["data"],
    "Secret": ["type"],
    "Service": ["spec.selector", "spec.ports[]"],
    "Deployment": ["spec.selector.matchLabels", "spec.template.metadata.labels", "spec.template.spec.containers[]"],
    "StatefulSet": ["spec.serviceName", "spec.selector.matchLabels", "spec.template.spec.containers[]"],
    "PersistentVolumeClaim": ["spec.accessModes[]", "spec.resources.requests.storage"],
    "PodDisruptionBudget": ["spec.selector"],
    "NetworkPolicy": ["spec.podSelector", "spec.policyTypes[]"],
    "Role": ["rules[]"],
    "RoleBinding": ["roleRef.kind", "roleRef.name", "roleRef.apiGroup", "subjects[]"],
    "ScaledObject": ["spec.scaleTargetRef.name", "spec.triggers[]"],
    "ScaledJob": ["spec.jobTargetRef.template.spec.containers[]", "spec.triggers[]"],
    "TriggerAuthentication": ["spec.secretTargetRef[]"],
    "ServiceMonitor": ["spec.selector", "spec.endpoints[]"],
    "PodMonitor": ["spec.selector", "spec.podMetricsEndpoints[]"],
    "PrometheusRule": ["spec.groups[]"],
}
API = {
    "Namespace": "v1", "ServiceAccount": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1",
    "PersistentVolumeClaim": "v1", "Deployment": "apps/v1", "StatefulSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1", "NetworkPolicy": "networking.k8s.io/v1",
    "Role": "rbac.authorization.k8s.io/v1", "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ScaledObject": "keda.sh/v1alpha1", "ScaledJob": "keda.sh/v1alpha1",
    "TriggerAuthentication": "keda.sh/v1alpha1", "ServiceMonitor": "monitoring.coreos.com/v1",
    "PodMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
}
NAMESPACED = set(API) - {"Namespace"}

# Unknown fields (issue #20): every field of every object must be one its schema knows, or the
# API server drops it (KEDA's and the operator's CRDs are structural: unknown fields are pruned)
# or rejects it (fieldValidation=Strict). The field trees live in tests/deploy/schemas, written
# by schemas/derive.py; each file's header names its source, version and what is not checked.
#   keda-2.12.json                 ScaledObject, ScaledJob, TriggerAuthentication of KEDA 2.12.0,
#                                  the oldest KEDA the manifests support (docs/deploy.md): a field
#                                  must be known THERE. keda-2.16.json (ScaledObject,
#                                  TriggerAuthentication) only says whether a later KEDA knows a
#                                  field 2.12 lacks. ScaledJob's jobTargetRef (a whole JobSpec in
#                                  KEDA's CRD) is checked as Kubernetes' batch/v1 JobSpec.
#   prometheus-operator-0.87.json  ServiceMonitor, PodMonitor, PrometheusRule
#   kubernetes-1.32.json           the core kinds of SCHEMA (a subset of swagger.json: below its
#                                  open_definitions nothing is checked), batch/v1 JobSpec, and
#                                  meta/v1 ObjectMeta for the metadata of every object
OLDEST_KEDA, NEWER_KEDA = "keda-2.12.json", "keda-2.16.json"
PROM_SCHEMA, K8S_SCHEMA = "prometheus-operator-0.87.json", "kubernetes-1.32.json"
FIELD_SCHEMAS = (OLDEST_KEDA, NEWER_KEDA, PROM_SCHEMA, K8S_SCHEMA)

# What KEDA's redis scalers read (deploy/keda, deploy/keda/sentinel): trigger metadata keys and
# TriggerAuthentication parameters. Sources: kedacore/keda pkg/scalers/redis_scaler.go — the
# parser of the KEDA 2.12 era (parseRedisAddress for `redis`, parseRedisMultipleAddress +
# parseRedisSentinelAddress for `redis-sentinel`, parseRedisMetadata, and
# parseTLSConfigIntoConnectionInfo for the TLS auth parameters, added in 2.12 by keda#4979) and
# the declarative redisConnectionInfo / redisMetadata that replaced it (`<name>FromEnv` keys come
# from scalersconfig's resolvedEnv order) — and the docs pages keda.sh/docs/2.12/scalers/
# redis-lists and .../redis-sentinel-lists. Only keys BOTH parsers read are listed, as the
# manifests claim KEDA >= 2.12: `addresses` for `redis`, `address` for `redis-sentinel` and a
# plain-text `password` / `sentinelPassword` in metadata are read by the declarative parser only.
# The redis-sentinel trigger exists since KEDA 2.5, activationListLength since 2.8; unsafeSsl is
# documented from the 2.10 pages on.
REDIS_COMMON_KEYS = {"listName", "listLength", "activationListLength", "databaseIndex", "enableTLS",
                     "unsafeSsl", "username", "usernameFromEnv", "passwordFromEnv"}
KEDA_REDIS_KEYS = {
    "redis": REDIS_COMMON_KEYS | {"address", "addressFromEnv", "host", "hostFromEnv", "port", "portFromEnv"},
    "redis-sentinel": REDIS_COMMON_KEYS | {"addresses", "addressesFromEnv", "hosts", "hostsFromEnv", "ports",
                                           "portsFromEnv", "sentinelUsername", "sentinelUsernameFromEnv",
                                           "sentinelPasswordFromEnv", "sentinelMaster", "sentinelMasterFromEnv"},
}
REDIS_TLS_AUTH = {"tls", "ca", "cert", "key"}
KEDA_REDIS_AUTH = {
    "redis": REDIS_TLS_AUTH | {"address", "host", "port", "username", "password"},
    "redis-sentinel": REDIS_TLS_AUTH | {"addresses", "hosts", "ports", "username", "password",
                                        "sentinelUsername", "sentinelPassword", "sentinelMaster"},
}


def ok(what):
    global NOK
    NOK += 1
    print("ok %d - %s" % (NOK, what))


def fail(what):
    FAILS.append(what)
    print("not ok - %s" % what)


def check(cond, what):
    (ok if cond else fail)(what)
    return cond


def need_tool(name):
    path = shutil.which(name)
    if path is None:
        print("SKIP: %s missing (deploy/local/deps.sh installs it)" % name)
        sys.exit(77)
    return path


def path_get(obj, dotted):
    cur = obj
    want_list = dotted.endswith("[]")
    for part in dotted.rstrip("[]").split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    if want_list and not (isinstance(cur, list) and cur):
        return None
    return cur


def yaml_files():
    out = [os.path.join(SRC, "docker-compose.yml")]
    for d in ("deploy/k8s", "deploy/keda", "deploy/prometheus"):
        for root, _, files in os.walk(os.path.join(SRC, d)):
            out += [os.path.join(root, f) for f in files if f.endswith((".yaml", ".yml"))]
    return sorted(out)


def validate_object(o, where):
    name = (o.get("metadata") or {}).get("name")
    kind = o.get("kind")
    if not (o.get("apiVersion") and kind and name):
        fail("%s: object without apiVersion/kind/metadata.name: %r" % (where, o)[:200])
        return
    if kind not in SCHEMA:
        fail("%s: %s/%s: kind not in the schema table" % (where, kind, name))
        return
    errs = []
    if o["apiVersion"] != API[kind]:
        errs.append("apiVersion %s, want %s" % (o["apiVersion"], API[kind]))
    if kind in NAMESPACED and not o["metadata"].get("namespace"):
        errs.append("no metadata.namespace")
    errs += ["missing %s" % f for f in SCHEMA[kind] if path_get(o, f) is None]
    if kind in ("Deployment", "StatefulSet"):
        sel = o["spec"]["selector"]["matchLabels"]
        labels = o["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in sel.items()):
            errs.append("selector does not match the pod labels")
    if kind in ("Deployment", "StatefulSet", "ScaledJob"):
        pod = dt.pod_spec(o)
        for c in pod["containers"]:
            if not c.get("name") or not c.get("image"):
                errs.append("container without name/image")
            sc = c.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False):
                errs.append("container %s: not read-only / may escalate" % c.get("name"))
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            errs.append("pod not runAsNonRoot")
        vols = {v["name"] for v in pod.get("volumes", [])}
        vols |= {t["metadata"]["name"] for t in o["spec"].get("volumeClaimTemplates", [])}
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    errs.append("mount %s has no volume" % m["name"])
    if errs:
        fail("%s: %s/%s: %s" % (where, kind, name, "; ".join(errs)))
    else:
        ok("%s: %s/%s has its required fields" % (os.path.basename(where), kind, name))


def field_schema_of(o, schemas):
    """The schema file (of FIELD_SCHEMAS, never the newer KEDA) that has o's apiVersion and kind."""
    key = "%s %s" % (o.get("apiVersion"), o.get("kind"))
    return next((f for f in (OLDEST_KEDA, PROM_SCHEMA, K8S_SCHEMA) if key in schemas[f]["kinds"]), None)


def field_errors(o, schemas):
    """One message per field of o that its schema does not know (or of the wrong shape)."""
    kind, name = o.get("kind"), (o.get("metadata") or {}).get("name")
    key = "%s %s" % (o.get("apiVersion"), kind)
    src = field_schema_of(o, schemas)
    if src is None:
        return ["%s %s: no field schema has %s (tests/deploy/schemas)" % (kind, name, key)]
    k8s = schemas[K8S_SCHEMA]
    kdefs, klabel = k8s["definitions"], k8s["header"]["label"]
    what = "%s (%s)" % (key, schemas[src]["header"]["label"])
    found = [(p, why, what) for p, why in dt.unknown_fields(o, schemas[src]["kinds"][key],
                                                             schemas[src].get("definitions"))]
    if src != K8S_SCHEMA:  # a custom resource's metadata is checked by the API server as ObjectMeta
        found += [(p, why, "meta/v1 ObjectMeta (%s)" % klabel) for p, why in
                  dt.unknown_fields(o.get("metadata"), k8s["kinds"]["meta/v1 ObjectMeta"], kdefs, "metadata")]
    if kind == "ScaledJob" and isinstance(o.get("spec"), dict):
        found += [(p, why, "batch/v1 JobSpec (%s)" % klabel) for p, why in
                  dt.unknown_fields(o["spec"].get("jobTargetRef"), k8s["kinds"]["batch/v1 JobSpec"], kdefs,
                                    "spec.jobTargetRef")]
    newer = None
    if src == OLDEST_KEDA and key in schemas[NEWER_KEDA]["kinds"]:
        newer = {p for p, _ in dt.unknown_fields(o, schemas[NEWER_KEDA]["kinds"][key])}
    msgs = []
    for p, why, where in found:
        if why != "unknown":
            msgs.append("%s %s: %s: %s, in %s" % (kind, name, p, why, where))
            continue
        m = "%s %s: %s: not in %s" % (kind, name, p, where)
        if newer is not None and where == what and p not in newer:
            m += ("; %s knows it, but the manifests support KEDA >= 2.12 (docs/deploy.md): a field must be "
                  "known to the oldest" % schemas[NEWER_KEDA]["header"]["label"])
        msgs.append(m)
    return msgs


def check_field_schemas(schemas, sources):
    """Section 3b: the unknown-field check over sources = [(where, objects)], per schema file,
    with negative controls proving each schema family can fail."""
    for name, s in schemas.items():
        h = s.get("header", {})
        check(bool(h.get("source") and h.get("label") and h.get("derived_by")) and s.get("kinds"),
              "field schema %s: %s, from %s" % (name, h.get("label"), str(h.get("source"))[:90]))
    no_schema = sorted(k for k in SCHEMA if field_schema_of({"apiVersion": API[k], "kind": k}, schemas) is None)
    check(not no_schema, "every kind of the SCHEMA table has a field schema %s" % no_schema)

    seen, errors, kinds = set(), {}, {}
    for where, objs in sources:
        for o in objs:
            ident = json.dumps(o, sort_keys=True)
            if ident in seen:
                continue
            seen.add(ident)
            src = field_schema_of(o, schemas) or "none"
            kinds.setdefault(src, {}).setdefault(o.get("kind"), set()).add((where, o["metadata"].get("name")))
            errors.setdefault(src, []).extend("%s: %s" % (where, m) for m in field_errors(o, schemas))
    sentinel = sum(1 for v in kinds.get(OLDEST_KEDA, {}).values() for where, _ in v if "deploy/keda/sentinel" in where)
    for src in (OLDEST_KEDA, PROM_SCHEMA, K8S_SCHEMA, "none"):
        if src not in kinds:
            continue
        counts = ", ".join("%d %s" % (len(v), k) for k, v in sorted(kinds[src].items()))
        label = schemas[src]["header"]["label"] if src in schemas else "no schema"
        extra = {OLDEST_KEDA: " (jobTargetRef as batch/v1 JobSpec, metadata as ObjectMeta; %d of them the "
                              "redis-sentinel objects of deploy/keda/sentinel)" % sentinel,
                 PROM_SCHEMA: " (metadata as ObjectMeta)"}.get(src, "")
        errs = errors.get(src, [])
        check(not errs and (src != OLDEST_KEDA or sentinel > 0),
              "unknown fields: every field of the %s objects (distinct over the files and the renders) is known "
              "to %s%s%s" % (counts, label, extra, "".join("\n    " + e for e in errs)))

    # Negative controls: a typo planted in a copy of a real object must be reported, with its
    # path, as the one new message (whatever the object already had).
    def planted(kind, name, edit, want):
        objs = [o for _, group in sources for o in group if o.get("kind") == kind and o["metadata"].get("name") == name]
        if not objs:
            fail("field-schema control: no %s %s to plant a typo in" % (kind, name))
            return
        o = json.loads(json.dumps(objs[0]))
        before = set(field_errors(o, schemas))
        orig = json.dumps(o, sort_keys=True)
        try:
            edit(o)
        except (KeyError, IndexError, TypeError) as e:
            fail("field-schema control: cannot plant a typo in %s %s (%s missing)" % (kind, name, e))
            return
        if json.dumps(o, sort_keys=True) == orig:
            fail("field-schema control: %s %s already has the planted field: %s" % (kind, name, want))
            return
        new = [m for m in field_errors(o, schemas) if m not in before]
        check(len(new) == 1 and new[0].startswith(want), "field-schema control, %s: %s" %
              (schemas[field_schema_of(o, schemas)]["header"]["label"], " | ".join(new) or "NOT REPORTED: " + want))

    def move(d, old, new):
        d[new] = d.pop(old)
    planted("ScaledObject", "opspool-worker-noop",
            lambda o: move(o["spec"]["advanced"], "scalingModifiers", "scalingModifier"),
            "ScaledObject opspool-worker-noop: spec.advanced.scalingModifier: not in keda.sh/v1alpha1 "
            "ScaledObject (KEDA 2.12)")
    planted("ScaledObject", "opspool-worker-noop", lambda o: o["spec"].update(initialCooldownPeriod=0),
            "ScaledObject opspool-worker-noop: spec.initialCooldownPeriod: not in keda.sh/v1alpha1 ScaledObject "
            "(KEDA 2.12); KEDA 2.16 knows it")
    planted("TriggerAuthentication", "opspool-keda-redis-sentinel",
            lambda o: move(o["spec"], "secretTargetRef", "secretTargetRefs"),
            "TriggerAuthentication opspool-keda-redis-sentinel: spec.secretTargetRefs: not in")
    planted("ScaledJob", "opspool-once-backup",
            lambda o: move(o["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0], "imagePullPolicy",
                           "imagePullPolcy"),
            "ScaledJob opspool-once-backup: spec.jobTargetRef.template.spec.containers[0].imagePullPolcy: not in "
            "batch/v1 JobSpec (Kubernetes")
    planted("ServiceMonitor", "opspool-scheduler", lambda o: move(o["spec"], "endpoints", "endpoint"),
            "ServiceMonitor opspool-scheduler: spec.endpoint: not in monitoring.coreos.com/v1 ServiceMonitor "
            "(Prometheus Operator")
    planted("PrometheusRule", "opspool", lambda o: move(o["spec"]["groups"][0]["rules"][0], "annotations", "annotation"),
            "PrometheusRule opspool: spec.groups[0].rules[0].annotation: not in")
    planted("PodMonitor", "opspool-workers", lambda o: o["metadata"].update(label={}),
            "PodMonitor opspool-workers: metadata.label: not in meta/v1 ObjectMeta")
    planted("Deployment", "opspool-scheduler",
            lambda o: move(o["spec"]["template"]["spec"]["containers"][0]["securityContext"], "readOnlyRootFilesystem",
                           "readOnlyRootFilesytem"),
            "Deployment opspool-scheduler: spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem: "
            "not in apps/v1 Deployment (Kubernetes")
    planted("NetworkPolicy", "opspool-redis-clients", lambda o: o["spec"].update(ingress={"from": []}),
            "NetworkPolicy opspool-redis-clients: spec.ingress: a list is expected here")


def main():
    need_tool("yamllint")
    compose = need_tool("docker-compose")

    # 1. YAML lint of every file.
    conf = ("{extends: default, rules: {line-length: {max: 130}, document-start: disable, "
            "comments: {min-spaces-from-content: 1}, comments-indentation: disable, "
            "truthy: {check-keys: false}, braces: {max-spaces-inside: 1}, brackets: {max-spaces-inside: 1}}}")
    files = yaml_files()
    r = subprocess.run(["yamllint", "-f", "parsable", "-d", conf] + files, capture_output=True, text=True)
    check(r.returncode == 0, "yamllint: %d files%s" % (len(files), "" if r.returncode == 0 else "\n" + r.stdout + r.stderr))

    # 2. Schema of every object in every manifest file.
    objects = {}
    for f in files:
        if f.endswith("docker-compose.yml") or os.path.basename(f) == "kustomization.yaml":
            continue
        for o in dt.load_docs(f):
            validate_object(o, os.path.relpath(f, SRC))
            objects.setdefault(f, []).append(o)

    # 3. Render the overlay like kustomize does; compare with kubectl kustomize when present.
    rendered = dt.render(os.path.join(SRC, "deploy/k8s/overlays/example"))
    ids = sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in rendered)
    check(len(ids) == len(set(ids)), "render: %d objects, no duplicates" % len(ids))
    check(all(o["metadata"]["labels"].get("app.kubernetes.io/part-of") == "opspool" for o in rendered
              if o["kind"] in ("Deployment", "Namespace", "Role", "RoleBinding") and o["metadata"]["name"] != "shop"),
          "render: the common labels applied (drill-rbac included)")
    base = dt.render(os.path.join(SRC, "deploy/k8s/base"))
    outside = sorted({(o["kind"], o["metadata"]["name"]) for o in base
                      if o["kind"] != "Namespace" and o["metadata"].get("namespace") != "opspool"})
    check(not outside, "the base is self-contained: every object in the opspool namespace %s" % outside)
    refs = [r for r in dt.load_docs(os.path.join(SRC, "deploy/k8s/base/kustomization.yaml"))[0]["resources"]
            if os.path.isabs(r) or os.path.normpath(r).startswith("..")]
    check(not refs, "the base loads no file outside its directory (plain kubectl apply -k) %s" % refs)
    # 3b. Unknown fields: every object of deploy/ (as written, and as the example overlay and
    # deploy/keda/sentinel render it) against the field schema of its kind (FIELD_SCHEMAS).
    schemas = {n: dt.load_schema(n) for n in FIELD_SCHEMAS}
    check_field_schemas(schemas, [(os.path.relpath(f, SRC), objs) for f, objs in sorted(objects.items())] +
                        [("render of deploy/k8s/overlays/example", rendered),
                         ("render of deploy/keda/sentinel", dt.render(os.path.join(SRC, "deploy/keda/sentinel")))])

    imgs = {c["image"] for o in rendered for c in dt._containers(o) if "opspool" in c["image"]}
    check(imgs == {"registry.example.com/opspool:0.1.0"}, "render: images transformer applied: %s" % imgs)
    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", os.path.join(SRC, "deploy/k8s/overlays/example")],
                           capture_output=True, text=True)
        if r.returncode == 0:
            kids = sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
                          for o in yaml.safe_load_all(r.stdout) if o)
            check(kids == ids, "kubectl kustomize renders the same objects as the Python renderer")
            ko = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(r.stdout) if o}
            po = {(o["kind"], o["metadata"]["name"]): o for o in rendered}
            diff = [k for k in po if json.dumps(po[k], sort_keys=True) != json.dumps(ko.get(k), sort_keys=True)]
            check(not diff, "kubectl kustomize output equals the Python render object by object %s" % diff[:3])
        else:
            fail("kubectl kustomize: " + r.stderr[-500:])
    else:
        print("# kubectl not installed: the Python render stands alone")

    # 4. docker-compose config, and the compose rules.
    r = subprocess.run([compose, "-f", os.path.join(SRC, "docker-compose.yml"), "config", "-q"],
                       capture_output=True, text=True, cwd=SRC)
    check(r.returncode == 0, "docker-compose config validates docker-compose.yml " + r.stderr[-800:])
    cdoc = dt.load_docs(os.path.join(SRC, "docker-compose.yml"))[0]
    svcs = cdoc["services"]
    secret_like = re.compile(r"(PASSWORD|DSN|SECRET|TOKEN|SIGNING_KEY)$")
    for name, s in svcs.items():
        env = s.get("environment") or {}
        bad = [k for k in env if secret_like.search(k)]
        check(not bad, "compose %s: no secret in an environment value %s" % (name, bad))
        for k, v in env.items():
            if k.endswith("_FILE") and str(v).startswith("/run/secrets/"):
                sec = os.path.basename(v)
                names = [x if isinstance(x, str) else x.get("target", x["source"]) for x in s.get("secrets", [])]
                check(sec in names, "compose %s: %s file is a mounted secret" % (name, k))
        if "OSP_WORKER_KINDS" in env:
            drain = int(env.get("OSP_DRAIN_TIMEOUT_S", 25))
            grace = dt.duration_s(s.get("stop_grace_period", "10s"))
            check(grace > drain + 15, "compose %s: stop_grace_period %ss > drain %ss + 15" % (name, grace, drain))
            check(s.get("read_only") is True, "compose %s: read-only root" % name)
        if s.get("image", "").startswith("opspool"):
            deps = s.get("depends_on") or {}
            check(all(isinstance(v, dict) and "condition" in v for v in deps.values()) if isinstance(deps, dict) else False,
                  "compose %s: depends_on with conditions" % name)
    rcmd = " ".join(svcs["redis"]["command"])
    check("--appendonly yes" in rcmd and "--appendfsync everysec" in rcmd and "--maxmemory-policy noeviction" in rcmd,
          "compose redis: AOF on, everysec, noeviction")
    for sname, sdef in cdoc.get("secrets", {}).items():
        check(sdef.get("file", "").startswith("./deploy/docker/secrets/"), "compose secret %s is a file" % sname)
    init = open(os.path.join(SRC, "deploy/docker/init-secrets.sh")).read()
    missing = [s for s, d in cdoc["secrets"].items() if "put " + os.path.basename(d["file"]) + " " not in init]
    check(not missing, "init-secrets.sh creates every compose secret file %s" % missing)

    # 5. KEDA list names = the keys the code uses, one ScaledObject per kind.
    prefix = dt.default_prefix(SRC)
    fmts = dt.key_formats(SRC)
    check({":queue:", ":inflight:"} <= fmts, "Lua scripts build P:queue:<kind> and P:inflight:<kind> (%s)" % sorted(fmts))
    rq_h = dt.src_read(SRC, "common/rq.h")
    check("P:queue:<kind> LIST" in rq_h and "P:inflight:<kind> ZSET" in rq_h, "rq.h documents the LIST and the ZSET")
    kinds = dt.job_kinds(SRC)
    keda_text = {f: open(os.path.join(SRC, "deploy/keda", f)).read()
                 for f in ("scaledobjects.yaml", "scaledjobs.yaml", "sentinel/scaledobjects.yaml")}
    for f, text in keda_text.items():
        unquoted = re.findall(r"listName:\s*[^\"\s].*", text)
        check(not unquoted, "%s: every listName is quoted %s" % (f, unquoted[:2]))
    sos = dt.load_docs(os.path.join(SRC, "deploy/keda/scaledobjects.yaml"))
    by_kind = {}
    for so in sos:
        dep = dt.find(rendered, "Deployment", so["spec"]["scaleTargetRef"]["name"])
        env = dt.container_env(rendered, dep)
        kind = env["OSP_WORKER_KINDS"]
        by_kind.setdefault(kind, []).append(so)
        trig = {t["name"]: t for t in so["spec"]["triggers"]}
        check(set(trig) == {"pending", "inflight"} and all(t["type"] == "redis" for t in trig.values()),
              "%s: redis triggers pending + inflight" % so["metadata"]["name"])
        check(trig["pending"]["metadata"]["listName"] == prefix + ":queue:" + kind,
              "%s: pending listName == %s:queue:%s" % (so["metadata"]["name"], prefix, kind))
        check(trig["inflight"]["metadata"]["listName"] == prefix + ":inflight:" + kind,
              "%s: inflight listName == %s:inflight:%s" % (so["metadata"]["name"], prefix, kind))
        slots = env["OSP_WORKER_SLOTS"]
        mod = so["spec"]["advanced"]["scalingModifiers"]
        check(all(t["metadata"]["listLength"] == slots for t in trig.values()) and mod["target"] == slots,
              "%s: listLength = target = OSP_WORKER_SLOTS (%s)" % (so["metadata"]["name"], slots))
        check(all(t["metadata"]["activationListLength"] == "0" for t in trig.values()) and mod["activationTarget"] == "0",
              "%s: activation at the first job" % so["metadata"]["name"])
        check(set(re.findall(r"[a-z]+", mod["formula"])) == set(trig), "%s: formula uses both triggers" % so["metadata"]["name"])
        check(all(t["authenticationRef"]["name"] == "opspool-keda-redis" for t in trig.values()),
              "%s: TriggerAuthentication" % so["metadata"]["name"])
        check(env.get("OSP_PREFIX", prefix) == prefix, "%s: the workers use the default prefix" % dep["metadata"]["name"])
    check(sorted(by_kind) == sorted(kinds) and all(len(v) == 1 for v in by_kind.values()),
          "one ScaledObject per kind of jobs/registry.c %s" % kinds)
    sjs = dt.load_docs(os.path.join(SRC, "deploy/keda/scaledjobs.yaml"))
    for sj in sjs:
        c = dt.pod_spec(sj)["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"]}
        k = env["OSP_WORKER_KINDS"]
        check(c["args"] == ["opspool-worker", "--once"], "%s: runs opspool-worker --once" % sj["metadata"]["name"])
        check(sj["spec"]["scalingStrategy"]["strategy"] == "accurate", "%s: strategy accurate" % sj["metadata"]["name"])
        check([t["metadata"]["listName"] for t in sj["spec"]["triggers"]] == [prefix + ":queue:" + k],
              "%s: the pending list only" % sj["metadata"]["name"])
    check(sorted(dt.find(sjs, "ScaledJob", "opspool-once-" + k)["metadata"]["name"] for k in ("backup", "drill")) ==
          ["opspool-once-backup", "opspool-once-drill"], "ScaledJobs for backup and drill")

    # 5b. Every redis / redis-sentinel trigger uses only keys its KEDA scaler reads, and its
    # TriggerAuthentication only parameters that scaler reads (KEDA_REDIS_KEYS / _AUTH above).
    tas = {o["metadata"]["name"]: o for d in ("deploy/keda", "deploy/keda/sentinel")
           for o in dt.load_docs(os.path.join(SRC, d, "triggerauthentication.yaml"))}
    sentinel_dir = os.path.join(SRC, "deploy/keda/sentinel")
    s_sos = dt.load_docs(os.path.join(sentinel_dir, "scaledobjects.yaml"))

    def trigger_keys_known(objs, where):
        unknown, bad_auth, not_str, tls_twice = [], [], [], []
        for o in objs:
            for t in o["spec"]["triggers"]:
                what = "%s/%s" % (o["metadata"]["name"], t.get("name"))
                allowed = KEDA_REDIS_KEYS.get(t["type"], set())
                unknown += ["%s: %s %s" % (what, t["type"], k) for k in sorted(set(t["metadata"]) - allowed)]
                not_str += [what for v in t["metadata"].values() if not isinstance(v, str)]
                ta = tas.get(t.get("authenticationRef", {}).get("name"))
                if ta is None:
                    bad_auth.append("%s: no TriggerAuthentication %s" % (what, t.get("authenticationRef")))
                    continue
                params = {r["parameter"] for r in ta["spec"]["secretTargetRef"]}
                bad_auth += ["%s: %s %s" % (what, ta["metadata"]["name"], k)
                             for k in sorted(params - KEDA_REDIS_AUTH.get(t["type"], set()))]
                if "enableTLS" in t["metadata"] and "tls" in params:
                    tls_twice.append(what)
        n = sum(len(o["spec"]["triggers"]) for o in objs)
        check(not unknown, "%s: the %d triggers use only metadata keys their KEDA redis scaler reads %s" %
              (where, n, unknown))
        check(not not_str, "%s: trigger metadata values are strings %s" % (where, not_str))
        check(not bad_auth, "%s: authenticationRefs name TriggerAuthentications of deploy/keda whose parameters "
              "the trigger's scaler reads %s" % (where, bad_auth))
        check(not tls_twice, "%s: TLS in the trigger or the TriggerAuthentication, never both %s" % (where, tls_twice))

    trigger_keys_known(sos, "deploy/keda/scaledobjects.yaml")
    trigger_keys_known(sjs, "deploy/keda/scaledjobs.yaml")
    trigger_keys_known(s_sos, "deploy/keda/sentinel/scaledobjects.yaml")

    # 5c. deploy/keda/sentinel: the same ScaledObjects as deploy/keda/scaledobjects.yaml, object by
    # object, but for the connection: redis-sentinel triggers on the Sentinels of master "opspool".
    s_rendered = dt.render(sentinel_dir)
    s_kust = dt.load_docs(os.path.join(sentinel_dir, "kustomization.yaml"))[0]
    check(all(not os.path.isabs(r) and not os.path.normpath(r).startswith("..") and os.path.dirname(r) == ""
              for r in s_kust["resources"]), "sentinel kustomization loads only its own files (apply -k)")
    check(sorted((o["kind"], o["metadata"]["name"]) for o in s_rendered) ==
          sorted([("TriggerAuthentication", "opspool-keda-redis-sentinel")] +
                 [("ScaledObject", o["metadata"]["name"]) for o in sos]),
          "sentinel kustomization renders its TriggerAuthentication and one ScaledObject per deploy/keda one")
    default_kust = dt.load_docs(os.path.join(SRC, "deploy/keda/kustomization.yaml"))[0]
    check(not any("sentinel" in r for r in default_kust["resources"]),
          "deploy/keda's kustomization does not include the sentinel objects (never both: same names)")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", sentinel_dir], capture_output=True, text=True)
        ko = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(r.stdout) if o} if r.returncode == 0 else {}
        po = {(o["kind"], o["metadata"]["name"]): o for o in s_rendered}
        check(r.returncode == 0 and ko.keys() == po.keys() and
              all(json.dumps(po[k], sort_keys=True) == json.dumps(ko[k], sort_keys=True) for k in po),
              "kubectl kustomize deploy/keda/sentinel equals the Python render " + r.stderr[-300:])
    sentinel_ta = "opspool-keda-redis-sentinel"
    ta = dt.find(s_rendered, "TriggerAuthentication", sentinel_ta)
    params = {r["parameter"]: (r["name"], r["key"]) for r in ta["spec"]["secretTargetRef"]}
    check(set(params) == {"username", "password", "sentinelUsername", "sentinelPassword"},
          "%s: Redis and Sentinel username + password %s" % (sentinel_ta, sorted(params)))
    plain_ta = tas["opspool-keda-redis"]
    check(all(params[r["parameter"]] == (r["name"], r["key"]) for r in plain_ta["spec"]["secretTargetRef"]),
          "%s: the data nodes' credentials are opspool-keda-redis's (ACL user keda)" % sentinel_ta)
    tmpl_keys = {d["metadata"]["name"]: set(d.get("stringData", {})) for d in
                 dt.load_docs(os.path.join(SRC, "deploy/k8s/secrets/secrets.template.yaml"))}
    missing = sorted(v for v in params.values() if v[1] not in tmpl_keys.get(v[0], set()))
    check(not missing, "%s: every Secret/key is in secrets.template.yaml %s" % (sentinel_ta, missing))
    twins = {o["metadata"]["name"]: o for o in sos}
    s_by_kind = {}
    ignore = ("address", "addresses", "sentinelMaster")
    for so in s_sos:
        name = so["metadata"]["name"]
        twin = twins.get(name)
        if not check(twin is not None, "sentinel %s: has a twin in deploy/keda/scaledobjects.yaml" % name):
            continue
        kind = dt.container_env(rendered, dt.find(rendered, "Deployment", so["spec"]["scaleTargetRef"]["name"]))[
            "OSP_WORKER_KINDS"]
        s_by_kind.setdefault(kind, []).append(so)
        trig = {t["name"]: t for t in so["spec"]["triggers"]}
        check(len(trig) == len(so["spec"]["triggers"]) and set(trig) == {"pending", "inflight"} and
              all(t["type"] == "redis-sentinel" for t in trig.values()),
              "sentinel %s: redis-sentinel triggers pending + inflight" % name)

        def strip(o):
            o = json.loads(json.dumps(o))
            for t in o["spec"]["triggers"]:
                t.pop("type")
                t.pop("authenticationRef")
                for k in ignore:
                    t["metadata"].pop(k, None)
            return o

        def diff(a, b, at=""):
            if isinstance(a, dict) and isinstance(b, dict):
                return [d for k in sorted(set(a) | set(b)) for d in diff(a.get(k), b.get(k), at + "/" + str(k))]
            if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
                return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, "%s/%d" % (at, i))]
            return [] if a == b else [at]
        differ = diff(strip(so), strip(twin))
        check(not differ, "sentinel %s: its deploy/keda twin's target, triggers, listName, listLength, activation, "
              "modifiers; only type, addresses, sentinelMaster, auth differ %s" % (name, differ))
        conn_bad = []
        for tname, t in trig.items():
            md = t["metadata"]
            addrs = [a.strip() for a in md.get("addresses", "").split(",")]
            if md.get("sentinelMaster") != "opspool":
                conn_bad.append("%s: sentinelMaster %r" % (tname, md.get("sentinelMaster")))
            if "address" in md or not all(re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]+$", a) for a in addrs):
                conn_bad.append("%s: addresses %r" % (tname, md.get("addresses")))
            if t["authenticationRef"]["name"] != sentinel_ta:
                conn_bad.append("%s: authenticationRef %s" % (tname, t["authenticationRef"]["name"]))
        check(not conn_bad, "sentinel %s: sentinelMaster \"opspool\", addresses a host:port list (%d Sentinels), "
              "authenticationRef %s %s" % (name, len(addrs), sentinel_ta, conn_bad))
    check(sorted(s_by_kind) == sorted(kinds) and all(len(v) == 1 for v in s_by_kind.values()),
          "sentinel: one ScaledObject per kind of jobs/registry.c %s" % kinds)
    conn = {json.dumps({k: t["metadata"].get(k) for k in ("addresses", "sentinelMaster", "databaseIndex")})
            for o in s_sos for t in o["spec"]["triggers"]}
    check(len(conn) == 1, "sentinel: every trigger on the same Sentinels, master and database")
    patches = dt.load_docs(os.path.join(SRC, "deploy/k8s/overlays/example/kustomization.yaml"))[0].get("patches", [])
    keda_targets = [p["target"] for p in patches if p.get("target", {}).get("group") == "keda.sh"]
    check(all(any(dt._matches(o, tg) for o in s_rendered) for tg in keda_targets),
          "the example overlay's KEDA patches also match deploy/keda/sentinel's objects %s" % keda_targets)

    # 6. Shutdown budgets: grace > drain + 15 s for every worker.
    for o in rendered + sjs:
        if o["kind"] not in ("Deployment", "ScaledJob"):
            continue
        env = dt.container_env(rendered, o)
        if "OSP_WORKER_KINDS" not in env:
            continue
        grace = dt.pod_spec(o)["terminationGracePeriodSeconds"]
        drain = int(env["OSP_DRAIN_TIMEOUT_S"])
        check(grace > drain + 15, "%s: terminationGracePeriodSeconds %d > OSP_DRAIN_TIMEOUT_S %d + 15" %
              (o["metadata"]["name"], grace, drain))
    sched = dt.find(rendered, "Deployment", "opspool-scheduler")
    check(sched["spec"]["replicas"] == 2, "scheduler: 2 replicas")
    c = dt.pod_spec(sched)["containers"][0]
    check(c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz",
          "scheduler: liveness /healthz, readiness /readyz")
    pdb = dt.find(rendered, "PodDisruptionBudget", "opspool-scheduler")
    check(pdb["spec"]["selector"]["matchLabels"] == sched["spec"]["selector"]["matchLabels"], "scheduler PDB selects the scheduler")
    bk = dt.find(rendered, "Deployment", "opspool-worker-backup")
    check(any(v.get("persistentVolumeClaim", {}).get("claimName") == "opspool-backups" for v in dt.pod_spec(bk)["volumes"]),
          "backup worker mounts the backups PVC")
    check(dt.find(sos, "ScaledObject", "opspool-worker-backup")["spec"]["maxReplicaCount"] == 1,
          "backup: at most one pod (ReadWriteOnce PVC)")
    bench = dt.pod_spec(dt.find(rendered, "Deployment", "opspool-worker-benchmark"))["containers"][0]["resources"]
    check(bench["requests"]["cpu"] == bench["limits"]["cpu"], "benchmark: Guaranteed CPU")

    # 7. Secrets referenced exist in the template (names and keys).
    tmpl = {d["metadata"]["name"]: set(d.get("stringData", {})) for d in
            dt.load_docs(os.path.join(SRC, "deploy/k8s/secrets/secrets.template.yaml"))}
    refs = set()
    for o in rendered + sjs:
        if o["kind"] in ("Deployment", "StatefulSet", "ScaledJob"):
            for v in dt.pod_spec(o).get("volumes", []):
                for s in v.get("projected", {}).get("sources", []):
                    if "secret" in s:
                        refs |= {(s["secret"]["name"], i["key"]) for i in s["secret"].get("items", [])}
                if "secret" in v:
                    refs |= {(v["secret"]["secretName"], None)}
        if o["kind"] == "TriggerAuthentication":
            refs |= {(r["name"], r["key"]) for r in o["spec"]["secretTargetRef"]}
    missing = [r for r in refs if r[0] not in tmpl or (r[1] is not None and r[1] not in tmpl[r[0]])]
    check(not missing, "every Secret/key the manifests mount is in secrets.template.yaml %s" % missing)

    # 8. NetworkPolicies: datastores only from scheduler/worker (+ KEDA for Redis).
    for name, port in (("opspool-redis-clients", 6379), ("opspool-postgres-clients", 5432)):
        np = dt.find(rendered, "NetworkPolicy", name)
        peers = np["spec"]["ingress"][0]["from"]
        comps = [p["podSelector"]["matchExpressions"][0]["values"] for p in peers
                 if "podSelector" in p and "namespaceSelector" not in p]
        check(comps == [["scheduler", "worker"]], "%s: only scheduler and worker pods" % name)
    check(any(p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "keda"
              for p in dt.find(rendered, "NetworkPolicy", "opspool-redis-clients")["spec"]["ingress"][0]["from"]),
          "redis: KEDA's operator admitted")

    # Every port a pod serves metrics on is admitted and scraped: the scheduler's through its
    # Service (ServiceMonitor), each worker's "metrics" port through the PodMonitor.
    def admitted(component, port):
        for np in (o for o in rendered if o["kind"] == "NetworkPolicy"):
            sel = np["spec"]["podSelector"].get("matchLabels", {})
            if sel.get("app.kubernetes.io/component") != component:
                continue
            for rule in np["spec"].get("ingress", []):
                if any(p.get("port") == port for p in rule.get("ports", [])):
                    return True
        return False
    worker_ports = {p["containerPort"] for o in rendered if o["kind"] == "Deployment"
                    and o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "worker"
                    for c in o["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])
                    if p.get("name") == "metrics"}
    check(worker_ports == {9090}, "workers serve /metrics on their 'metrics' port 9090 %s" % sorted(worker_ports))
    check(admitted("worker", 9090), "a NetworkPolicy admits scrapes of the workers' port 9090")
    check(admitted("scheduler", 8080), "a NetworkPolicy admits the scheduler's port 8080")
    mon = dt.load_docs(os.path.join(SRC, "deploy/prometheus/servicemonitor.yaml"))
    pm = [o for o in mon if o["kind"] == "PodMonitor"]
    check(len(pm) == 1 and pm[0]["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == "worker"
          and [e["port"] for e in pm[0]["spec"]["podMetricsEndpoints"]] == ["metrics"],
          "a PodMonitor scrapes every worker pod's 'metrics' port")

    # 9. The drill Role covers exactly the adapter's calls.
    rbac = dt.load_docs(os.path.join(SRC, "deploy/k8s/drill-rbac/drill-rbac.yaml"))
    calls = dt.drill_api_calls(SRC)
    grants = dt.role_grants(rbac)
    check(len(calls) >= 5, "drill adapter calls found in jobs/drill/k8s.c: %s" % sorted(calls))
    check(calls <= grants, "drill Role grants every call the adapter makes (missing: %s)" % sorted(calls - grants))
    extra = grants - calls
    check(not extra, "drill Role grants nothing else (extra: %s)" % sorted(extra))
    rb = [d for d in rbac if d["kind"] == "RoleBinding"][0]
    check(any(s["kind"] == "ServiceAccount" and s["name"] == "opspool-worker" and s.get("namespace") == "opspool"
              for s in rb["subjects"]), "drill RoleBinding binds the workers' ServiceAccount")
    check(any(o["kind"] == "Role" and o["metadata"]["name"] == "opspool-drill" for o in rendered),
          "the example overlay includes the drill Role (../../drill-rbac)")

    # 9a. The benchmark's scale Role (scale-out lanes) covers exactly the calls of
    # jobs/benchmark/scale.c, on named Deployments only, and is bound to the benchmark worker's
    # identity alone; the example overlay includes it.
    srbac = dt.load_docs(os.path.join(SRC, "deploy/k8s/bench-scale-rbac/bench-scale-rbac.yaml"))
    scalls = dt.bench_scale_api_calls(SRC)
    sgrants = dt.role_grants(srbac)
    check(scalls == {("apps", "deployments/scale", "get"), ("apps", "deployments/scale", "patch"),
                     ("apps", "deployments", "get")},
          "benchmark scale calls found in jobs/benchmark/scale.c: %s" % sorted(scalls))
    check(sgrants == scalls, "scale Role grants exactly the scale adapter's calls (grants %s, calls %s)" %
          (sorted(sgrants), sorted(scalls)))
    srules = [r for d in srbac if d["kind"] == "Role" for r in d["rules"]]
    check(all(r.get("resourceNames") for r in srules) and
          len({tuple(sorted(r["resourceNames"])) for r in srules}) == 1,
          "scale Role: every rule limited to the same named Deployments (resourceNames)")
    srb = [d for d in srbac if d["kind"] == "RoleBinding"][0]
    scale_sas = {s["name"] for s in srb["subjects"] if s["kind"] == "ServiceAccount"}
    bench_sas = {dt.pod_spec(o)["serviceAccountName"] for o in rendered
                 if o["kind"] in ("Deployment", "ScaledJob") and
                 "OSP_WORKER_KINDS" in dt.container_env(rendered, o) and
                 dt.container_env(rendered, o)["OSP_WORKER_KINDS"] == "benchmark"}
    check(scale_sas == bench_sas == {"opspool-worker-benchmark"} and
          all(s.get("namespace") == "opspool" for s in srb["subjects"]),
          "scale RoleBinding binds the benchmark worker's ServiceAccount only (%s)" % sorted(scale_sas))
    others = {dt.pod_spec(o)["serviceAccountName"] for o in rendered
              if o["kind"] in ("Deployment", "ScaledJob") and "OSP_WORKER_KINDS" in dt.container_env(rendered, o)
              and dt.container_env(rendered, o)["OSP_WORKER_KINDS"] != "benchmark"}
    check(not (others & scale_sas), "no other worker runs with scale rights (others run as %s)" % sorted(others))
    check(any(o["kind"] == "Role" and o["metadata"]["name"] == "opspool-bench-scale" for o in rendered),
          "the example overlay includes the scale Role (../../bench-scale-rbac)")

    # 9b. The workers' Role covers exactly the worker's own call (its pod-deletion-cost PATCH),
    # in the workers' namespace, for the identities the worker Deployments run as; every worker
    # Deployment knows its pod (Downward API) and mounts its token; drill rights stay with the
    # drill worker's identity.
    wrbac = dt.load_docs(os.path.join(SRC, "deploy/k8s/base/worker-rbac.yaml"))
    wcalls = dt.worker_api_calls(SRC)
    wgrants = dt.role_grants(wrbac)
    check(len(wcalls) >= 1, "worker calls found in worker/podcost.c: %s" % sorted(wcalls))
    check(wgrants == wcalls, "worker Role grants exactly the worker's calls (grants %s, calls %s)" %
          (sorted(wgrants), sorted(wcalls)))
    check(all(d["metadata"]["namespace"] == "opspool" for d in wrbac), "worker Role/RoleBinding live in opspool")
    workers = [o for o in rendered if o["kind"] == "Deployment" and "OSP_WORKER_KINDS" in dt.container_env(rendered, o)]
    wsas = {dt.pod_spec(o)["serviceAccountName"] for o in workers}
    wrb = [d for d in wrbac if d["kind"] == "RoleBinding"][0]
    check(wrb["roleRef"]["name"] == [d for d in wrbac if d["kind"] == "Role"][0]["metadata"]["name"] and
          {s["name"] for s in wrb["subjects"] if s["kind"] == "ServiceAccount" and s.get("namespace") == "opspool"} == wsas,
          "worker RoleBinding binds exactly the worker Deployments' ServiceAccounts %s" % sorted(wsas))
    downward = {"OSP_POD_NAME": "<" + json.dumps({"fieldRef": {"fieldPath": "metadata.name"}}) + ">",
                "OSP_POD_NAMESPACE": "<" + json.dumps({"fieldRef": {"fieldPath": "metadata.namespace"}}) + ">"}
    for o in workers:
        env = dt.container_env(rendered, o)
        pod = dt.pod_spec(o)
        check(all(env.get(k) == v for k, v in downward.items()) and pod.get("automountServiceAccountToken") is True,
              "%s: OSP_POD_NAME/OSP_POD_NAMESPACE from the Downward API, token mounted" % o["metadata"]["name"])
    drill_sas = {s["name"] for s in rb["subjects"] if s["kind"] == "ServiceAccount"}
    others = {dt.pod_spec(o)["serviceAccountName"] for o in workers
              if dt.container_env(rendered, o)["OSP_WORKER_KINDS"] != "drill"}
    check(not (others & drill_sas), "only the drill worker runs with drill rights (others run as %s)" % sorted(others))

    # 10. Alerts and dashboard: exported metrics only, runbook anchors exist.
    metrics = dt.exported_metrics(SRC)
    ops = open(os.path.join(SRC, "docs/operators.md"), encoding="utf-8").read()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", ops, re.M)}
    rule_doc = dt.load_docs(os.path.join(SRC, "deploy/prometheus/alerts.yaml"))[0]
    promql_words = {"max", "by", "and", "on", "delta", "time", "offset", "absent", "sum", "rate", "kind",
                    "schedule", "state", "component", "status", "histogram_quantile", "le", "duty", "class",
                    "h", "m", "s", "humanizeDuration", "value"}

    def names_in(expr):
        expr = re.sub(r'"[^"]*"', '""', expr)
        return {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr) if w.startswith("opspool_")}

    alerts = []
    for g in rule_doc["spec"]["groups"]:
        for rule in g["rules"]:
            alerts.append(rule["alert"])
            unknown = names_in(rule["expr"]) - metrics
            check(not unknown, "alert %s uses exported metrics only %s" % (rule["alert"], sorted(unknown)))
            url = rule["annotations"].get("runbook_url", "")
            m = re.match(r"docs/operators\.md#([a-z0-9-]+)$", url)
            check(bool(m) and m.group(1) in anchors, "alert %s: runbook_url %s is a section of docs/operators.md" %
                  (rule["alert"], url))
    for want in ("OpspoolBacklogGrowing", "OpspoolJobsDeadLettered", "OpspoolNoWorkersForQueue",
                 "OpspoolNightlyBackupMissed", "OpspoolBenchmarkFailing"):
        check(want in alerts, "alert %s defined" % want)
    promtool = shutil.which("promtool")
    if promtool:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as t:
            yaml.safe_dump({"groups": rule_doc["spec"]["groups"]}, t)
        r = subprocess.run([promtool, "check", "rules", t.name], capture_output=True, text=True)
        os.unlink(t.name)
        check(r.returncode == 0, "promtool check rules " + r.stdout[-500:] + r.stderr[-500:])
    dash = json.load(open(os.path.join(SRC, "deploy/grafana/opspool.json")))
    # A data source type newer Grafana releases introduced must come with the minimum version.
    if "grafana-postgresql-datasource" in json.dumps(dash):
        req = {r["id"]: r.get("version") for r in dash.get("__requires", [])}
        check(req.get("grafana") == "10.2.3" and "10.2.3" in dash.get("description", ""),
              "dashboard states Grafana >= 10.2.3 (grafana-postgresql-datasource) in __requires and its description")
    titles = [p["title"] for p in dash["panels"]]
    for want in ("Backlog", "Throughput", "Failures", "durations", "Busy slots", "backup age"):
        check(any(want.lower() in t.lower() for t in titles), "dashboard has a %s panel" % want)
    for p in dash["panels"]:
        for t in p.get("targets", []):
            if "expr" in t:
                unknown = names_in(t["expr"]) - metrics
                check(not unknown, "dashboard panel %r uses exported metrics only %s" % (p["title"], sorted(unknown)))
            if "rawSql" in t:
                check("opspool.jobs" in t["rawSql"], "dashboard panel %r queries the ledger" % p["title"])
    check(len({p["id"] for p in dash["panels"]}) == len(dash["panels"]), "dashboard panel ids unique")

    # 11. Dockerfile and build context.
    df = open(os.path.join(SRC, "deploy/docker/Dockerfile")).read()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", df, re.M)
    check(re.search(r"^ARG DEBIAN_IMAGE=debian:bookworm-slim$", df, re.M) is not None and
          all(f == "${DEBIAN_IMAGE}" for f, _ in froms) and len(froms) == 2, "Dockerfile: two stages on debian:bookworm-slim")
    user = re.findall(r"^USER\s+(\S+)", df, re.M)
    check(user and re.match(r"^[1-9][0-9]*(:[1-9][0-9]*)?$", user[-1]) is not None, "Dockerfile: numeric non-root USER")
    check(re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--"\]', df, re.M) is not None and " tini " in df,
          "Dockerfile: tini is PID 1 and installed")
    check(re.search(r"^HEALTHCHECK .*\n?.*opspool-healthcheck", df, re.M) is not None, "Dockerfile: HEALTHCHECK")
    cm = open(os.path.join(SRC, "CMakeLists.txt")).read() + open(os.path.join(SRC, "tools/CMakeLists.txt")).read()
    targets = set(re.findall(r"(?:add_executable\((opspool[-\w]*)|:(opspool[-\w]*)\b)", cm))
    targets = {a or b for a, b in targets}
    built = set(re.search(r"--target ([^\n\\]+)", df).group(1).split())
    check(built == targets, "Dockerfile builds every program: %s" % sorted(targets))
    build_stage = df[:df.index("AS runtime")]
    check("OSP_LEAN_WORKER" not in df and "server-dev" not in build_stage,
          "Dockerfile: every program links the shared libraries (ADR 0009)")
    runtime = df[df.index("AS runtime"):]
    check(re.search(r"\btzdata\b", runtime) is not None,
          "Dockerfile: the runtime stage installs tzdata on purpose (schedules use IANA zones)")
    for label in ("title", "version", "revision", "licenses", "base.name"):
        check("org.opencontainers.image.%s=" % label in runtime, "Dockerfile: OCI label %s" % label)
    pkgs = set(re.findall(r"\b(lib[a-z0-9.+-]+|postgresql-client-15|tini|curl|ca-certificates)\b", runtime))
    if BIN and shutil.which("ldd") and shutil.which("dpkg"):
        progs = [os.path.join(BIN, p) for p in ("opspool-scheduler", "opspool-worker", "opspoolctl")]
        progs += [os.path.join(BIN, "tools", p) for p in ("opspool-shortener", "opspool-loadgen")]
        direct = set()
        for p in progs:
            if not os.path.exists(p):
                continue
            r = subprocess.run(["objdump", "-p", p], capture_output=True, text=True) if shutil.which("objdump") else None
            if r is None or r.returncode != 0:
                continue
            for lib in re.findall(r"NEEDED\s+(\S+)", r.stdout):
                # The test suite's own build may carry sanitizer runtimes; the image's
                # release build never does.
                if not re.match(r"lib(asan|ubsan|lsan|tsan)\.so", lib):
                    direct.add(lib)
        owners = set()
        for lib in sorted(direct):
            r = subprocess.run(["dpkg", "-S", "*/" + lib], capture_output=True, text=True)
            if r.returncode == 0:
                owners |= {line.split(":")[0].strip() for line in r.stdout.splitlines()
                           if not line.startswith("libc6")}
        missing = {o.split(":")[0] for o in owners} - pkgs
        check(owners and not missing, "runtime stage installs the packages of every NEEDED library %s (missing %s)" %
              (sorted(owners), sorted(missing)))
    # .dockerignore keeps what the build needs: configure a copy of the filtered context.
    ign = [l.strip() for l in open(os.path.join(SRC, ".dockerignore")) if l.strip() and not l.startswith("#")]

    def ignored(rel):
        import fnmatch
        parts = rel.split("/")
        for pat in ign:
            p = pat.lstrip("/").rstrip("/")
            if p.startswith("**/"):
                if any(fnmatch.fnmatch(part, p[3:]) for part in parts):
                    return True
            elif fnmatch.fnmatch(rel, p) or any(fnmatch.fnmatch("/".join(parts[:i]), p) for i in range(1, len(parts))):
                return True
        return False

    need = ["CMakeLists.txt", "cmake/OspEmbed.cmake", "common/config.c", "common/lua/fetch.lua", "jobs/registry.c",
            "worker/main.c", "scheduler/main.c", "cli/main.c", "tools/CMakeLists.txt",
            "tools/schema.sql", "deploy/docker/healthcheck.sh"]
    check(not [n for n in need if ignored(n)], ".dockerignore keeps the build's inputs")
    check(ignored("deploy/docker/secrets/opspool_pg_dsn") and ignored(".git/config") and ignored("build/x"),
          ".dockerignore drops secrets, .git and build trees")
    if shutil.which("cmake") and os.environ.get("OSP_DEPLOY_CONTEXT_CHECK", "1") == "1":
        tmp = tempfile.mkdtemp(prefix="osp-ctx-")
        try:
            ctx = os.path.join(tmp, "src")
            for root, dirs, fs in os.walk(SRC):
                rel_root = os.path.relpath(root, SRC)
                rel_root = "" if rel_root == "." else rel_root + "/"
                dirs[:] = [d for d in dirs if not ignored(rel_root + d)]
                for f in fs:
                    rel = rel_root + f
                    # Regular files only: a build tree inside the checkout may hold the test
                    # servers' unix sockets, which cannot be copied (and are never context).
                    if not ignored(rel) and os.path.isfile(os.path.join(root, f)):
                        os.makedirs(os.path.join(ctx, rel_root), exist_ok=True)
                        shutil.copy2(os.path.join(root, f), os.path.join(ctx, rel))
            r = subprocess.run(["cmake", "-S", ctx, "-B", os.path.join(tmp, "build"), "-DCMAKE_BUILD_TYPE=Release",
                                "-DBUILD_TESTING=OFF"], capture_output=True, text=True, timeout=120)
            check(r.returncode == 0, "the filtered build context configures like the Dockerfile's build "
                  + r.stderr[-800:])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # 12. The ACL file: KEDA's user reads only the pool's queue and in-flight keys.
    acl = [l for l in open(os.path.join(SRC, "deploy/keda/redis-users.acl")) if l.startswith("user keda ")]
    check(len(acl) == 1 and set(re.findall(r"~(\S+)", acl[0])) == {prefix + ":queue:*", prefix + ":inflight:*"}
          and set(re.findall(r"\+(\S+)", acl[0])) == {"ping", "eval", "type", "llen", "zcard"},
          "ACL: keda = +ping +eval +type +llen +zcard on the queue and in-flight keys")

    print("%d passed, %d failed" % (NOK, len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
