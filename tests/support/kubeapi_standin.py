#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kubeapi_standin.py — a stand-in for the Kubernetes API server, for drill adapter and worker
tests.

    kubeapi_standin.py --port-file F --token-file T [--cert C --key K]

Serves HTTPS (with --cert/--key) or HTTP on 127.0.0.1 (port 0; the port is written to F). It
answers only the calls the drill adapter may make (deploy/k8s/drill-rbac/drill-rbac.yaml) and the worker's
pod-deletion-cost PATCH (deploy/k8s/base/worker-rbac.yaml), checks every request's method, path,
headers (Authorization: Bearer, Content-Type: application/json, or application/merge-patch+json
for PATCH) and body against the Kubernetes / Chaos Mesh shapes, with strict field validation
(an unknown field, e.g. a misspelt "directon", is 400 BadRequest "strict decoding error: unknown
field", as a server with fieldValidation=Strict answers), and answers the way the real
API does: 201 objects with server-set metadata, Status objects for 4xx (404 NotFound, 409
AlreadyExists, 422 Invalid, 429 TooManyRequests from a PodDisruptionBudget, 401 Unauthorized,
403 Forbidden). A request that is wrong by the documented shapes is also recorded as a
*violation*: tests assert there are none.

Control (no auth, not part of the API):
    POST /_standin/reset   body: scenario config (see DEFAULTS); clears state and the log
    GET  /_standin/log     {"requests": [...], "violations": [...]}

Worker PATCH /api/v1/namespaces/{ns}/pods/{name}: the body must be exactly
{"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "<int32>"}}}; the
value is stored on the pod (answered 200 with the pod, like the API) and in the request record
as "cost". Config patch_forbidden answers 403 the way missing RBAC does. Records carry "t"
(seconds since the epoch) so tests can check request spacing.

Benchmark scale-out lanes (jobs/benchmark/scale.c, deploy/k8s/bench-scale-rbac/):
    GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale   an autoscaling/v1 Scale
    PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale   a JSON merge patch of it
    GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}         an apps/v1 Deployment
Config "deployments" ({name: {"replicas": N}}) holds the Deployments; a PATCH of spec.replicas
bumps metadata.generation, and each later GET of the Deployment plays the controller: the
first "observe_lag_gets" GETs still show the old status and observedGeneration, then
status.replicas follows spec.replicas (at once), readyReplicas climbs "ready_step" pods per GET
(never above "ready_cap", when set), and zero counts are left out as the API leaves them out.
Shapes are checked like the API's: unknown fields (400 strict decoding error), a non-integer
spec.replicas (400 BadRequest, the decoder's message), a negative one (422 Invalid); a PATCH
that touches more than spec.replicas is also a violation (opspool patches nothing else), and
so is any PUT (update is not granted). Names in "forbidden_deployments" answer 403 as a Role
whose resourceNames leave them out. The log's "deployments" shows the current state and
"scale_history" every spec.replicas set, in order.

Token rotation (config rotate_at = N): while serving the N-th API request the stand-in plays
the kubelet: writes a new token to the token file, stops accepting the old one, and answers
that request 401 (it carried the old token).
"""
import argparse
import copy
import json
import os
import re
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULTS = {
    "namespace": "shop",
    "labels": {"app": "shortener"},
    "pods": ["shortener-7d9c-a", "shortener-7d9c-b", "shortener-7d9c-c"],
    "pdb_blocks": 0,        # evictions answered 429 before one is allowed
    "rotate_at": 0,         # API request number at which the token rotates (0 = never)
    "inject_after_gets": 1, # GETs of a chaos object before AllInjected=True
    "recover_gets": 1,      # GETs after DELETE that still see the object (AllRecovered=True)
    "existing": [],         # chaos objects present at start: {plural, name, job_id}
    "patch_forbidden": False,  # pod PATCHes answered 403 (the worker Role missing)
    "deployments": {},      # name -> {"replicas": N}: Deployments a benchmark may scale
    "observe_lag_gets": 1,  # Deployment GETs after a change before the controller has seen it
    "ready_step": 1,        # ready pods gained per Deployment GET
    "ready_cap": None,      # readyReplicas never above this (a rollout that cannot finish)
    "forbidden_deployments": [],  # names outside the Role's resourceNames: 403
}
COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
INT_STR = re.compile(r"^-?[0-9]+$")
CHAOS = {"stresschaos": "StressChaos", "networkchaos": "NetworkChaos"}
DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$")
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MODES = {"one", "all", "fixed", "fixed-percent", "random-max-percent"}
NET_ACTIONS = {"netem", "delay", "loss", "duplicate", "corrupt", "partition", "bandwidth"}


# Strict field validation (kubectl --validate=strict, ?fieldValidation=Strict; the default of
# server-side apply): a field the schema does not know is refused with 400 BadRequest and
# 'strict decoding error: unknown field "<path>"', so a typo like "directon" or "delay.jiter"
# cannot pass. The schemas list every field of the real types that opspool could send:
# ObjectMeta, DeleteOptions, policy/v1 Eviction, and Chaos Mesh v1alpha1 StressChaos and
# NetworkChaos (api/v1alpha1/{stresschaos,networkchaos,selector}_types.go). A dict maps field
# -> sub-schema; ANY accepts any value (maps of labels, free-form options); [s] is a list of s.
ANY = "any"
OBJECT_META = {"name": ANY, "generateName": ANY, "namespace": ANY, "labels": ANY,
               "annotations": ANY, "finalizers": ANY, "ownerReferences": ANY}
DELETE_OPTIONS = {"kind": ANY, "apiVersion": ANY, "gracePeriodSeconds": ANY,
                  "preconditions": {"uid": ANY, "resourceVersion": ANY},
                  "orphanDependents": ANY, "propagationPolicy": ANY, "dryRun": ANY}
EVICTION = {"apiVersion": ANY, "kind": ANY, "metadata": OBJECT_META, "deleteOptions": DELETE_OPTIONS}
SELECTOR = {"namespaces": ANY, "nodes": ANY, "pods": ANY, "nodeSelectors": ANY,
            "fieldSelectors": ANY, "labelSelectors": ANY, "annotationSelectors": ANY,
            "expressionSelectors": ANY, "podPhaseSelectors": ANY}
STRESSOR = {"workers": ANY, "options": ANY}
STRESS_SPEC = {"selector": SELECTOR, "mode": ANY, "value": ANY, "containerNames": ANY,
               "duration": ANY, "remoteCluster": ANY, "stressngStressors": ANY,
               "stressors": {"cpu": dict(STRESSOR, load=ANY),
                             "memory": dict(STRESSOR, size=ANY, oomScoreAdj=ANY)}}
NET_SPEC = {"selector": SELECTOR, "mode": ANY, "value": ANY, "action": ANY,
            "target": {"selector": SELECTOR, "mode": ANY, "value": ANY},
            "direction": ANY, "externalTargets": ANY, "device": ANY, "targetDevice": ANY,
            "duration": ANY, "remoteCluster": ANY,
            "delay": {"latency": ANY, "correlation": ANY, "jitter": ANY,
                      "reorder": {"reorder": ANY, "correlation": ANY, "gap": ANY}},
            "loss": {"loss": ANY, "correlation": ANY},
            "duplicate": {"duplicate": ANY, "correlation": ANY},
            "corrupt": {"corrupt": ANY, "correlation": ANY},
            "rate": {"rate": ANY},
            "bandwidth": {"rate": ANY, "limit": ANY, "buffer": ANY, "peakrate": ANY, "minburst": ANY}}
# autoscaling/v1 Scale (k8s.io/api/autoscaling/v1 types.go): spec.replicas, status.replicas and
# status.selector, nothing else.
SCALE_SCHEMA = {"apiVersion": ANY, "kind": ANY, "metadata": OBJECT_META,
                "spec": {"replicas": ANY}, "status": {"replicas": ANY, "selector": ANY}}
CHAOS_SCHEMA = {
    "stresschaos": {"apiVersion": ANY, "kind": ANY, "metadata": OBJECT_META, "spec": STRESS_SPEC},
    "networkchaos": {"apiVersion": ANY, "kind": ANY, "metadata": OBJECT_META, "spec": NET_SPEC},
}


def unknown_field(obj, schema, path=""):
    """The first field of obj that schema does not know (as "a.b.c"), or None."""
    if schema == ANY:
        return None
    if isinstance(schema, list):
        if not isinstance(obj, list):
            return None  # a type error is the shape checks' business
        for i, e in enumerate(obj):
            u = unknown_field(e, schema[0], f"{path}[{i}]")
            if u:
                return u
        return None
    if not isinstance(obj, dict):
        return None
    for k, v in obj.items():
        p = f"{path}.{k}" if path else k
        if k not in schema:
            return p
        u = unknown_field(v, schema[k], p)
        if u:
            return u
    return None


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status_obj(code, reason, message, details=None):
    s = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
         "message": message, "reason": reason, "code": code}
    if details:
        s["details"] = details
    return s


class State:
    def __init__(self, token_file):
        self.lock = threading.Lock()
        self.token_file = token_file
        self.reset(dict(DEFAULTS))

    def reset(self, cfg):
        c = dict(DEFAULTS)
        c.update(cfg)
        self.cfg = c
        self.requests = []
        self.violations = []
        self.api_count = 0
        with open(self.token_file) as f:
            self.token = f.read().strip()
        self.pods = {n: {"phase": "Running", "deleting": False, "annotations": {}} for n in c["pods"]}
        self.pdb_blocks = c["pdb_blocks"]
        self.deployments = {}
        for name, d in c["deployments"].items():
            n = d["replicas"]
            self.deployments[name] = {"spec": n, "generation": 1, "observed": 1, "replicas": n,
                                      "ready": n, "rv": 1, "lag": 0,
                                      "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name))}
        self.scale_history = []
        self.chaos = {}
        for e in c["existing"]:
            obj = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": CHAOS[e["plural"]],
                   "metadata": {"name": e["name"], "namespace": c["namespace"],
                                "labels": {"opspool.io/job-id": e["job_id"]},
                                "uid": str(uuid.uuid4()), "resourceVersion": "1",
                                "creationTimestamp": now_rfc3339()},
                   "spec": {}, "status": {}}
            self.chaos[(e["plural"], e["name"])] = {"obj": obj, "gets": 0, "deleted_gets": None}

    def violation(self, req, msg):
        self.violations.append({"request": req, "violation": msg})


def check_delete_options(body, where):
    if body is None:
        return None
    if not isinstance(body, dict):
        return f"{where}: must be an object"
    if body.get("kind", "DeleteOptions") != "DeleteOptions":
        return f"{where}.kind: must be DeleteOptions"
    g = body.get("gracePeriodSeconds")
    if g is not None and (not isinstance(g, int) or isinstance(g, bool) or g < 0):
        return f"{where}.gracePeriodSeconds: must be a non-negative integer"
    return None


def check_chaos(plural, body, ns):
    """Return an error message when body is not a valid Chaos Mesh object for plural."""
    if not isinstance(body, dict):
        return "body must be an object"
    if body.get("apiVersion") != "chaos-mesh.org/v1alpha1":
        return "apiVersion: must be chaos-mesh.org/v1alpha1"
    if body.get("kind") != CHAOS[plural]:
        return f"kind: must be {CHAOS[plural]}"
    md = body.get("metadata") or {}
    if not isinstance(md.get("name"), str) or not DNS1123.match(md["name"]) or len(md["name"]) > 253:
        return "metadata.name: required, a DNS-1123 subdomain"
    if md.get("namespace", ns) != ns:
        return "metadata.namespace: does not match the request path"
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return "spec: required"
    sel = spec.get("selector")
    if not isinstance(sel, dict) or not isinstance(sel.get("namespaces"), list) or not sel["namespaces"]:
        return "spec.selector.namespaces: required (opspool never creates cluster-scoped selectors)"
    if any(n != ns for n in sel["namespaces"]):
        return "spec.selector.namespaces: names a namespace other than the object's"
    if not sel.get("labelSelectors") and not sel.get("pods"):
        return "spec.selector: labelSelectors or pods required (never all pods)"
    if spec.get("mode") not in MODES:
        return "spec.mode: must be one of " + ", ".join(sorted(MODES))
    if spec["mode"] == "all":
        return "spec.mode: all is refused by this API's policy for drills"
    if spec["mode"] != "one" and not isinstance(spec.get("value"), str):
        return "spec.value: required (a string) for mode " + spec["mode"]
    if not isinstance(spec.get("duration"), str) or not DURATION.match(spec["duration"]):
        return "spec.duration: required, like \"30s\" (faults must expire on their own)"
    if plural == "stresschaos":
        cpu = (spec.get("stressors") or {}).get("cpu")
        if not isinstance(cpu, dict):
            return "spec.stressors.cpu: required"
        w, l = cpu.get("workers"), cpu.get("load")
        if not isinstance(w, int) or not 1 <= w <= 8192:
            return "spec.stressors.cpu.workers: integer 1..8192 required"
        if l is not None and (not isinstance(l, int) or not 0 <= l <= 100):
            return "spec.stressors.cpu.load: integer 0..100"
    else:
        if spec.get("action") not in NET_ACTIONS:
            return "spec.action: must be one of " + ", ".join(sorted(NET_ACTIONS))
        if spec["action"] == "delay":
            d = spec.get("delay")
            if not isinstance(d, dict) or not isinstance(d.get("latency"), str) or not DURATION.match(d["latency"]):
                return "spec.delay.latency: required, like \"200ms\""
            if "jitter" in d and (not isinstance(d["jitter"], str) or not DURATION.match(d["jitter"])):
                return "spec.delay.jitter: a duration string"
            c = d.get("correlation")
            if c is not None and (not isinstance(c, str) or not c.isdigit() or int(c) > 100):
                return "spec.delay.correlation: a string \"0\"..\"100\""
        if spec.get("direction", "to") not in ("to", "from", "both"):
            return "spec.direction: to, from or both"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set in main

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return code

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def handle_any(self, method):
        st = self.state
        url = urlsplit(self.path)
        raw = self.read_body()
        if url.path.startswith("/_standin/"):
            with st.lock:
                if method == "POST" and url.path == "/_standin/reset":
                    st.reset(json.loads(raw or b"{}"))
                    self.reply(200, {"ok": True})
                elif method == "GET" and url.path == "/_standin/log":
                    self.reply(200, {"requests": st.requests, "violations": st.violations,
                                     "deployments": {n: {"spec": d["spec"], "replicas": d["replicas"],
                                                         "ready": d["ready"]}
                                                     for n, d in st.deployments.items()},
                                     "scale_history": st.scale_history})
                else:
                    self.reply(404, {})
            return
        with st.lock:
            st.api_count += 1
            auth = self.headers.get("Authorization") or ""
            rec = {"n": st.api_count, "method": method, "path": url.path, "query": url.query,
                   "token_ok": auth == "Bearer " + st.token, "t": time.time()}
            body = None
            if raw:
                rec["content_type"] = self.headers.get("Content-Type")
                try:
                    body = json.loads(raw)
                    rec["body"] = body
                except ValueError:
                    rec["body_raw"] = raw.decode(errors="replace")
            st.requests.append(rec)
            rec["status"] = self.serve(st, method, url, auth, raw, body, rec)

    def strict_unknown(self, st, rec, body, schema):
        """Refuse a body with a field the type does not have, as strict field validation does.
        True when refused (the status is in rec["status_code"])."""
        u = unknown_field(body, schema) if body is not None else None
        if not u:
            return False
        st.violation(rec, f"unknown field {u!r}")
        rec["status_code"] = self.reply(400, status_obj(
            400, "BadRequest", f'strict decoding error: unknown field "{u}"'))
        return True

    def patch_pod(self, st, name, body, rec):
        cfg, ns = st.cfg, st.cfg["namespace"]
        err = patch_pod_body_error(body)
        if err:
            st.violation(rec, err)
            return self.reply(422, status_obj(422, "Invalid", f'Pod "{name}" is invalid: {err}'))
        rec["cost"] = body["metadata"]["annotations"][COST_ANNOTATION]
        if cfg["patch_forbidden"]:
            return self.reply(403, status_obj(
                403, "Forbidden",
                f'pods "{name}" is forbidden: User "system:serviceaccount:{ns}:opspool-worker" '
                f'cannot patch resource "pods" in API group "" in the namespace "{ns}"',
                {"name": name, "kind": "pods"}))
        pod = st.pods.get(name)
        if pod is None or pod["deleting"]:
            return self.reply(404, status_obj(404, "NotFound", f'pods "{name}" not found',
                                              {"name": name, "kind": "pods"}))
        pod.setdefault("annotations", {})[COST_ANNOTATION] = rec["cost"]
        pod["rv"] = pod.get("rv", 1) + 1
        return self.reply(200, {"apiVersion": "v1", "kind": "Pod",
                                "metadata": {"name": name, "namespace": ns, "labels": cfg["labels"],
                                             "annotations": dict(pod["annotations"]),
                                             "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, ns + "/" + name)),
                                             "resourceVersion": str(pod["rv"])},
                                "spec": {"containers": [{"name": "worker", "image": "opspool"}]},
                                "status": {"phase": pod["phase"]}})

    def serve_deployment(self, st, method, parts, body, rec):
        cfg, ns = st.cfg, st.cfg["namespace"]
        name, scale = parts[6], len(parts) == 8
        res = "deployments/scale" if scale else "deployments"
        verb = {"GET": "get", "PATCH": "patch", "PUT": "update", "DELETE": "delete", "POST": "create"}[method]
        if parts[4] != ns:
            st.violation(rec, f"namespace {parts[4]} outside the Role's namespace")
            return self.reply(403, status_obj(403, "Forbidden", f"{res} is forbidden"))
        if not scale and method != "GET" or scale and method not in ("GET", "PATCH"):
            st.violation(rec, f"{method} {res}: not granted to the benchmark Role")
            return self.reply(403, status_obj(
                403, "Forbidden",
                f'{res.split("/")[0]}.apps "{name}" is forbidden: User "system:serviceaccount:opspool:'
                f'opspool-worker-benchmark" cannot {verb} resource "{res}" in API group "apps" in the '
                f'namespace "{ns}"', {"name": name, "group": "apps", "kind": res}))
        if name in cfg["forbidden_deployments"]:
            return self.reply(403, status_obj(
                403, "Forbidden",
                f'deployments.apps "{name}" is forbidden: User "system:serviceaccount:opspool:'
                f'opspool-worker-benchmark" cannot {verb} resource "{res}" in API group "apps" in the '
                f'namespace "{ns}"', {"name": name, "group": "apps", "kind": res}))
        d = st.deployments.get(name)
        if d is None:
            return self.reply(404, status_obj(404, "NotFound", f'deployments.apps "{name}" not found',
                                              {"name": name, "group": "apps", "kind": "deployments"}))
        if not scale:
            # The controller's turn: after the lag, status follows spec.
            if d["observed"] < d["generation"]:
                if d["lag"] > 0:
                    d["lag"] -= 1
                    return self.reply(200, deployment_obj(name, ns, d, cfg["labels"]))
                d["observed"] = d["generation"]
            d["replicas"] = d["spec"]
            cap = d["spec"] if cfg["ready_cap"] is None else min(d["spec"], cfg["ready_cap"])
            if d["ready"] > d["spec"]:
                d["ready"] = d["spec"]
            elif d["ready"] < cap:
                d["ready"] = min(cap, d["ready"] + cfg["ready_step"])
            return self.reply(200, deployment_obj(name, ns, d, cfg["labels"]))
        if method == "GET":
            return self.reply(200, scale_obj(name, ns, d, cfg["labels"]))
        # PATCH .../scale: a JSON merge patch of the Scale object.
        if self.strict_unknown(st, rec, body, SCALE_SCHEMA):
            return rec["status_code"]
        bad = scale_patch_error(body)
        if bad:
            code, reason, msg = bad
            st.violation(rec, msg)
            if code == 422:
                msg = f'Scale.autoscaling "{name}" is invalid: {msg}'
            return self.reply(code, status_obj(code, reason, msg))
        if body != {"spec": {"replicas": (body.get("spec") or {}).get("replicas")}} or \
                "replicas" not in (body.get("spec") or {}):
            st.violation(rec, "scale patch: opspool patches spec.replicas and nothing else")
        md = body.get("metadata") or {}
        if md.get("name", name) != name:
            return self.reply(400, status_obj(400, "BadRequest", "the name of the object does not match the name on the URL"))
        want = (body.get("spec") or {}).get("replicas", d["spec"])
        rec["replicas"] = want
        if want != d["spec"]:
            d["spec"] = want
            d["generation"] += 1
            d["rv"] += 1
            d["lag"] = cfg["observe_lag_gets"]
            st.scale_history.append({"name": name, "replicas": want})
        return self.reply(200, scale_obj(name, ns, d, cfg["labels"]))

    def serve(self, st, method, url, auth, raw, body, rec):
        cfg = st.cfg
        if not auth.startswith("Bearer "):
            st.violation(rec, "no Authorization: Bearer header")
            return self.reply(401, status_obj(401, "Unauthorized", "Unauthorized"))
        if cfg["rotate_at"] and st.api_count == cfg["rotate_at"]:
            st.token = "rotated-" + uuid.uuid4().hex
            with open(st.token_file + ".tmp", "w") as f:
                f.write(st.token + "\n")
            os.replace(st.token_file + ".tmp", st.token_file)
            rec["rotated"] = True
        if auth != "Bearer " + st.token:
            return self.reply(401, status_obj(401, "Unauthorized", "Unauthorized"))
        if raw:
            # PATCH bodies name their patch type; the worker sends a JSON merge patch.
            want_ct = "application/merge-patch+json" if method == "PATCH" else "application/json"
            if (self.headers.get("Content-Type") or "").split(";")[0].strip() != want_ct:
                st.violation(rec, f"body without Content-Type: {want_ct}")
                return self.reply(415, status_obj(415, "UnsupportedMediaType", "unsupported media type"))
            if body is None:
                st.violation(rec, "body is not JSON")
                return self.reply(400, status_obj(400, "BadRequest", "invalid JSON body"))
        if method in ("POST", "PUT", "PATCH") and not raw:
            st.violation(rec, f"{method} without a body")
            return self.reply(400, status_obj(400, "BadRequest", "empty body"))
        ns = cfg["namespace"]
        parts = url.path.strip("/").split("/")
        q = parse_qs(url.query)
        # /api/v1/namespaces/{ns}/pods[/{name}[/eviction]]
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 5 and parts[4] == "pods":
            if parts[3] != ns:
                st.violation(rec, f"namespace {parts[3]} outside the Role's namespace")
                return self.reply(403, status_obj(403, "Forbidden", "pods is forbidden"))
            if len(parts) == 5 and method == "GET":
                sel = q.get("labelSelector", [""])[0]
                want = ",".join(f"{k}={v}" for k, v in cfg["labels"].items())
                if not sel:
                    st.violation(rec, "pod list without labelSelector")
                elif sel != want:
                    st.violation(rec, f"labelSelector {sel!r} != the target's {want!r}")
                items = [{"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": n, "namespace": ns, "labels": cfg["labels"],
                                       **({"deletionTimestamp": now_rfc3339()} if p["deleting"] else {})},
                          "status": {"phase": p["phase"]}} for n, p in st.pods.items()]
                return self.reply(200, {"kind": "PodList", "apiVersion": "v1",
                                        "metadata": {"resourceVersion": "100"}, "items": items})
            if len(parts) == 5 and method == "DELETE":
                st.violation(rec, "collection delete of pods (deletecollection is not granted)")
                return self.reply(403, status_obj(403, "Forbidden", "deletecollection is forbidden"))
            if len(parts) == 6 and method == "DELETE":
                name = parts[5]
                if self.strict_unknown(st, rec, body, DELETE_OPTIONS):
                    return rec["status_code"]
                err = check_delete_options(body, "body")
                if err:
                    st.violation(rec, err)
                    return self.reply(400, status_obj(400, "BadRequest", err))
                if "gracePeriodSeconds" in q and not q["gracePeriodSeconds"][0].isdigit():
                    st.violation(rec, "gracePeriodSeconds query: not an integer")
                if name not in st.pods or st.pods[name]["deleting"]:
                    return self.reply(404, status_obj(404, "NotFound", f'pods "{name}" not found',
                                                      {"name": name, "kind": "pods"}))
                st.pods[name]["deleting"] = True
                st.pods[name + "-r"] = {"phase": "Running", "deleting": False}
                return self.reply(200, {"apiVersion": "v1", "kind": "Pod",
                                        "metadata": {"name": name, "namespace": ns,
                                                     "deletionTimestamp": now_rfc3339()},
                                        "status": {"phase": "Running"}})
            if len(parts) == 6 and method == "PATCH":
                return self.patch_pod(st, parts[5], body, rec)
            if len(parts) == 7 and parts[6] == "eviction" and method == "POST":
                name = parts[5]
                if self.strict_unknown(st, rec, body, EVICTION):
                    return rec["status_code"]
                md = (body or {}).get("metadata") or {}
                err = None
                if body.get("apiVersion") != "policy/v1" or body.get("kind") != "Eviction":
                    err = "Eviction: apiVersion policy/v1 and kind Eviction required"
                elif md.get("name") != name:
                    err = "Eviction: metadata.name must equal the pod in the path"
                elif md.get("namespace", ns) != ns:
                    err = "Eviction: metadata.namespace must equal the path's"
                else:
                    err = check_delete_options(body.get("deleteOptions"), "deleteOptions")
                if err:
                    st.violation(rec, err)
                    return self.reply(400, status_obj(400, "BadRequest", err))
                if name not in st.pods or st.pods[name]["deleting"]:
                    return self.reply(404, status_obj(404, "NotFound", f'pods "{name}" not found',
                                                      {"name": name, "kind": "pods"}))
                if st.pdb_blocks > 0:
                    st.pdb_blocks -= 1
                    return self.reply(429, status_obj(
                        429, "TooManyRequests",
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        {"causes": [{"reason": "DisruptionBudget",
                                     "message": "The disruption budget shortener-pdb needs 2 healthy pods and has 2 currently"}]}))
                st.pods[name]["deleting"] = True
                st.pods[name + "-r"] = {"phase": "Running", "deleting": False}
                return self.reply(201, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                        "status": "Success", "code": 201})
        # /apis/apps/v1/namespaces/{ns}/deployments/{name}[/scale]
        if parts[:4] == ["apis", "apps", "v1", "namespaces"] and len(parts) in (7, 8) \
                and parts[5] == "deployments" and (len(parts) == 7 or parts[7] == "scale"):
            return self.serve_deployment(st, method, parts, body, rec)
        # /apis/chaos-mesh.org/v1alpha1/namespaces/{ns}/{plural}[/{name}]
        if parts[:4] == ["apis", "chaos-mesh.org", "v1alpha1", "namespaces"] and len(parts) >= 6 \
                and parts[5] in CHAOS:
            plural = parts[5]
            if parts[4] != ns:
                st.violation(rec, f"namespace {parts[4]} outside the Role's namespace")
                return self.reply(403, status_obj(403, "Forbidden", f"{plural} is forbidden"))
            if len(parts) == 6 and method == "POST":
                if self.strict_unknown(st, rec, body, CHAOS_SCHEMA[plural]):
                    return rec["status_code"]
                err = check_chaos(plural, body, ns)
                if err:
                    st.violation(rec, err)
                    return self.reply(422, status_obj(422, "Invalid", f"{CHAOS[plural]} is invalid: {err}",
                                                      {"kind": CHAOS[plural], "group": "chaos-mesh.org"}))
                name = body["metadata"]["name"]
                if (plural, name) in st.chaos:
                    return self.reply(409, status_obj(
                        409, "AlreadyExists", f'{plural}.chaos-mesh.org "{name}" already exists',
                        {"name": name, "group": "chaos-mesh.org", "kind": plural}))
                obj = copy.deepcopy(body)
                obj["metadata"].update({"namespace": ns, "uid": str(uuid.uuid4()), "resourceVersion": "1",
                                        "generation": 1, "creationTimestamp": now_rfc3339()})
                obj["status"] = {}
                st.chaos[(plural, name)] = {"obj": obj, "gets": 0, "deleted_gets": None}
                return self.reply(201, obj)
            if len(parts) == 7:
                key = (plural, parts[6])
                entry = st.chaos.get(key)
                if entry is None:
                    return self.reply(404, status_obj(404, "NotFound",
                                                      f'{plural}.chaos-mesh.org "{parts[6]}" not found',
                                                      {"name": parts[6], "group": "chaos-mesh.org", "kind": plural}))
                obj = entry["obj"]
                if method == "GET":
                    if entry["deleted_gets"] is not None:
                        entry["deleted_gets"] += 1
                        if entry["deleted_gets"] > cfg["recover_gets"]:
                            del st.chaos[key]
                            return self.reply(404, status_obj(404, "NotFound", "not found"))
                        obj["status"] = {"conditions": [
                            {"type": "Selected", "status": "True"}, {"type": "AllInjected", "status": "False"},
                            {"type": "AllRecovered", "status": "True"}]}
                    else:
                        entry["gets"] += 1
                        inj = "True" if entry["gets"] >= cfg["inject_after_gets"] else "False"
                        obj["status"] = {"conditions": [
                            {"type": "Selected", "status": "True"}, {"type": "AllInjected", "status": inj},
                            {"type": "AllRecovered", "status": "False"}, {"type": "Paused", "status": "False"}],
                            "experiment": {"desiredPhase": "Run"}}
                    return self.reply(200, obj)
                if method == "DELETE":
                    if entry["deleted_gets"] is None:
                        entry["deleted_gets"] = 0
                        obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                        obj["metadata"]["finalizers"] = ["chaos-mesh/records"]
                    return self.reply(200, obj)
        st.violation(rec, f"{method} {url.path}: not a call the drill or worker Role allows")
        return self.reply(404, status_obj(404, "NotFound", "the server could not find the requested resource"))


def scale_obj(name, ns, d, labels):
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": name, "namespace": ns, "uid": d["uid"],
                         "resourceVersion": str(d["rv"]), "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": d["spec"]},
            "status": {"replicas": d["replicas"],
                       "selector": ",".join(f"{k}={v}" for k, v in labels.items())}}


def deployment_obj(name, ns, d, labels):
    status = {"observedGeneration": d["observed"]}
    # The API leaves zero counts out (omitempty): a reader must take a missing one as 0.
    for key, v in (("replicas", d["replicas"]), ("updatedReplicas", d["replicas"]),
                   ("readyReplicas", d["ready"]), ("availableReplicas", d["ready"])):
        if v:
            status[key] = v
    unavailable = d["replicas"] - d["ready"]
    if unavailable > 0:
        status["unavailableReplicas"] = unavailable
    status["conditions"] = [{"type": "Available",
                             "status": "True" if d["ready"] >= d["spec"] else "False",
                             "reason": "MinimumReplicasAvailable"}]
    return {"kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": name, "namespace": ns, "uid": d["uid"], "labels": labels,
                         "resourceVersion": str(d["rv"]), "generation": d["generation"],
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": d["spec"], "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": name, "image": "shortener"}]}}},
            "status": status}


def scale_patch_error(body):
    """(code, reason, message) when the API would refuse this merge patch of a Scale, else None."""
    if not isinstance(body, dict):
        return 400, "BadRequest", "json: cannot unmarshal into Go value of type map[string]interface {}"
    spec = body.get("spec", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return 400, "BadRequest", "json: cannot unmarshal " + type(spec).__name__ + \
            ' into Go struct field Scale.spec of type v1.ScaleSpec'
    if "replicas" in spec:
        r = spec["replicas"]
        if isinstance(r, bool) or not isinstance(r, int):
            kind = {str: "string", float: "number", bool: "bool", list: "array", dict: "object"}.get(
                type(r), "null")
            return 400, "BadRequest", ("json: cannot unmarshal " + kind +
                                       " into Go struct field ScaleSpec.spec.replicas of type int32")
        if not -2**31 <= r < 2**31:
            return 400, "BadRequest", "json: cannot unmarshal number into Go struct field " \
                "ScaleSpec.spec.replicas of type int32"
        if r < 0:
            return 422, "Invalid", f"spec.replicas: Invalid value: {r}: must be greater than or equal to 0"
    return None


def patch_pod_body_error(body):
    """Why body is not the worker's deletion-cost merge patch (it must touch nothing else)."""
    if not isinstance(body, dict) or set(body) != {"metadata"}:
        return "patch body: only metadata may be patched"
    md = body["metadata"]
    if not isinstance(md, dict) or set(md) != {"annotations"}:
        return "patch body: only metadata.annotations may be patched"
    ann = md["annotations"]
    if not isinstance(ann, dict) or set(ann) != {COST_ANNOTATION}:
        return f"patch body: only the {COST_ANNOTATION} annotation may be patched"
    v = ann[COST_ANNOTATION]
    if not isinstance(v, str) or not INT_STR.match(v):
        return f"{COST_ANNOTATION}: must be a string holding an integer"
    if not -2**31 <= int(v) < 2**31:
        return f"{COST_ANNOTATION}: must fit an int32"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    Handler.state = State(a.token_file)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
