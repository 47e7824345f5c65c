#!/usr/bin/env python3
"""Offline checks of the controller's deploy files, for tests/deploy.rs. Run it with the
project's venv (scripts/ensure-emulator installs what it imports):

  .venv/bin/python scripts/validate-deploy.py kubernetes deploy/kubernetes
      Every object against the Kubernetes JSON schemas of kubernetes-validate (strict:
      unknown fields are errors; a kind it has no schema for is an error too, not the
      command-line tool's warning); the ServiceMonitor (a CRD, so not in those schemas)
      against a small schema of its essential fields below; kustomization.yaml against the
      files beside it; and the references between the objects and the pod's security
      settings.
  .venv/bin/python scripts/validate-deploy.py ecs deploy/ecs
      task-definition.json as the input of ECS RegisterTaskDefinition and service.json as
      the input of CreateService, against botocore's model of the ECS API (unknown or
      missing parameters, types, enum values), and the settings the deployment relies on.
  .venv/bin/python scripts/validate-deploy.py controller-args deploy/kubernetes deploy/ecs
      The controller container's command line in each, one `FILE<TAB>ARG` line per argument.

Problems are printed as `FAIL file: message` lines; the exit status is 1 when there is one.
"""

import glob
import json
import os
import re
import sys

import yaml

# Kubernetes versions to validate against: each must be one that the pinned
# kubernetes-validate ships schemas for (its package data: kubernetes-json-schema/v*).
KUBERNETES_VERSIONS = ["1.33.0", "1.37.0"]
CONTROLLER = "controller"  # the controller's container, in the Deployment and the task
PORT = 8181

# The Prometheus Operator's ServiceMonitor (monitoring.coreos.com/v1): the fields this
# deployment relies on, with the operator CRD's types and patterns. Not the whole CRD.
DURATION = r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABEL_SELECTOR = {
    "type": "object",
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {"type": "array"},
    },
    "additionalProperties": False,
}
SERVICE_MONITOR_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": LABEL_SELECTOR,
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}

problems = []


def fail(where, message):
    problems.append(f"{where}: {message}")


def load_yaml(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


# --- Kubernetes -----------------------------------------------------------------------


def kubernetes(directory):
    import jsonschema
    from kubernetes_validate import utils as kv

    kustomization_path = os.path.join(directory, "kustomization.yaml")
    files = sorted(
        p
        for p in glob.glob(os.path.join(directory, "*.y*ml"))
        if p != kustomization_path
    )
    objects = []  # (file, object)
    for path in files:
        for doc in load_yaml(path):
            objects.append((path, doc))
    if not objects:
        fail(directory, "no Kubernetes objects found")
        return

    monitor_schema = jsonschema.Draft202012Validator(SERVICE_MONITOR_SCHEMA)
    for path, obj in objects:
        where = f"{path} {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("apiVersion") == "monitoring.coreos.com/v1":
            errors = sorted(monitor_schema.iter_errors(obj), key=lambda e: list(e.path))
            for e in errors:
                fail(where, f"{'.'.join(map(str, e.path))}: {e.message} (ServiceMonitor schema)")
            if not errors:
                print(f"ok {where}: essential ServiceMonitor fields (own schema; a CRD)")
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kv.validate(obj, version, strict=True)
                print(f"ok {where}: Kubernetes {version} schema (strict)")
            except kv.ValidationError as e:
                fail(where, f"{'.'.join(map(str, e.path))}: {e.message} (Kubernetes {e.version})")
            except (kv.SchemaNotFoundError, kv.InvalidSchemaError, kv.VersionNotSupportedError) as e:
                fail(where, e.message)

    check_kustomization(kustomization_path, files, objects)
    check_references(objects)


def check_kustomization(path, files, objects):
    if not os.path.exists(path):
        fail(path, "missing")
        return
    docs = load_yaml(path)
    k = docs[0] if docs else {}
    if k.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or k.get("kind") != "Kustomization":
        fail(path, "not a kustomize.config.k8s.io/v1beta1 Kustomization")
    known = {"apiVersion", "kind", "namespace", "resources", "images", "labels", "commonAnnotations"}
    for key in set(k) - known:
        fail(path, f"unexpected field {key!r}")
    listed = k.get("resources") or []
    here = {os.path.basename(f) for f in files}
    for r in listed:
        if r not in here:
            fail(path, f"resources: {r} is not a file in {os.path.dirname(path)}")
    for f in sorted(here - set(listed)):
        fail(path, f"resources: {f} is not listed")
    if len(listed) != len(set(listed)):
        fail(path, "resources: a file is listed twice")
    namespace = k.get("namespace")
    for f, obj in objects:
        meta = obj.get("metadata", {})
        if obj.get("kind") == "Namespace":
            if meta.get("name") != namespace:
                fail(f, f"Namespace {meta.get('name')} is not the kustomization's {namespace}")
        elif meta.get("namespace") != namespace:
            fail(f, f"{obj.get('kind')}/{meta.get('name')}: namespace {meta.get('namespace')} is not {namespace}")
    images = {c.get("image") for _, o in objects if o.get("kind") == "Deployment" for c in containers(o)}
    for image in k.get("images") or []:
        if image.get("name") not in images:
            fail(path, f"images: {image.get('name')} is no container's image")
    print(f"ok {path}: lists exactly the {len(here)} files beside it")


def containers(deployment, init=True):
    spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    return (spec.get("initContainers") or [] if init else []) + (spec.get("containers") or [])


def subset(small, big):
    return bool(small) and all(big.get(k) == v for k, v in small.items())


def check_references(objects):
    by_kind = {}
    for f, obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append((f, obj))

    def one(kind):
        found = by_kind.get(kind, [])
        if len(found) != 1:
            fail("deploy/kubernetes", f"expected one {kind}, found {len(found)}")
            return None, {}
        return found[0]

    # Consistent labels on every object (and on the pods, below).
    for f, obj in objects:
        labels = obj.get("metadata", {}).get("labels") or {}
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of"):
            if labels.get(key) != "agentcore-controller":
                fail(f, f"{obj.get('kind')}: label {key} is not agentcore-controller")

    df, dep = one("Deployment")
    saf, sa = one("ServiceAccount")
    rf, role = one("Role")
    rbf, rb = one("RoleBinding")
    sf, svc = one("Service")
    pf, pdb = one("PodDisruptionBudget")
    mf, sm = one("ServiceMonitor")
    if not all((dep, sa, role, rb, svc, pdb, sm)):
        return  # reported above: the references below need every object
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"].get("labels") or {}
    for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/part-of"):
        if pod_labels.get(key) != "agentcore-controller":
            fail(df, f"pod template: label {key} is not agentcore-controller")
    pod_spec = pod["spec"]
    pod_sc = pod_spec.get("securityContext") or {}

    if dep["spec"].get("replicas") != 2:
        fail(df, "replicas is not 2")
    if not subset(dep["spec"]["selector"].get("matchLabels"), pod_labels):
        fail(df, "spec.selector does not select the pod template's labels")
    if not subset(svc.get("spec", {}).get("selector"), pod_labels):
        fail(sf, "spec.selector does not select the Deployment's pods")
    if not subset(pdb.get("spec", {}).get("selector", {}).get("matchLabels"), pod_labels):
        fail(pf, "spec.selector does not select the Deployment's pods")
    if pdb.get("spec", {}).get("minAvailable") != 1:
        fail(pf, "minAvailable is not 1")
    spread = pod_spec.get("topologySpreadConstraints") or []
    affinity = (pod_spec.get("affinity") or {}).get("podAntiAffinity")
    if not affinity and not any(
        t.get("topologyKey") == "kubernetes.io/hostname"
        and subset(t.get("labelSelector", {}).get("matchLabels"), pod_labels)
        for t in spread
    ):
        fail(df, "nothing spreads the replicas across nodes")

    # Identity and RBAC: the pods' ServiceAccount is bound to a Role for leases only.
    if pod_spec.get("serviceAccountName") != sa.get("metadata", {}).get("name"):
        fail(df, "serviceAccountName is not the ServiceAccount")
    if not (sa.get("metadata", {}).get("annotations") or {}).get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::"):
        fail(saf, "no eks.amazonaws.com/role-arn annotation (IRSA)")
    ref = rb.get("roleRef", {})
    if ref.get("kind") != "Role" or ref.get("name") != role.get("metadata", {}).get("name"):
        fail(rbf, "roleRef is not the Role")
    subjects = rb.get("subjects") or []
    if not any(
        s.get("kind") == "ServiceAccount"
        and s.get("name") == sa.get("metadata", {}).get("name")
        and s.get("namespace") == sa.get("metadata", {}).get("namespace")
        for s in subjects
    ):
        fail(rbf, "subjects do not name the ServiceAccount")
    verbs = set()
    for rule in role.get("rules") or []:
        if rule.get("apiGroups") != ["coordination.k8s.io"] or rule.get("resources") != ["leases"]:
            fail(rf, f"a rule for something other than coordination.k8s.io leases: {rule}")
        rule_verbs = set(rule.get("verbs") or [])
        verbs |= rule_verbs
        if not rule_verbs <= {"get", "create", "update"}:
            fail(rf, f"verbs beyond get, create, update: {sorted(rule_verbs)}")
        # RBAC cannot match `create` against resourceNames: such a rule never allows it.
        if "create" in rule_verbs and rule.get("resourceNames"):
            fail(rf, "`create` with resourceNames is never allowed")
        if rule_verbs - {"create"} and not rule.get("resourceNames"):
            fail(rf, f"{sorted(rule_verbs - {'create'})} without resourceNames")
    if verbs != {"get", "create", "update"}:
        fail(rf, f"lease verbs are {sorted(verbs)}, not get, create, update")

    # Containers: non-root, read-only, no privileges, bounded; volumes and config exist.
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    config_maps = {o["metadata"]["name"] for _, o in by_kind.get("ConfigMap", [])}
    for c in containers(dep):
        where = f"{df} container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            fail(where, "runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) in (0, None):
            fail(where, "runs as uid 0 (or an unstated uid)")
        if sc.get("readOnlyRootFilesystem") is not True:
            fail(where, "readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            fail(where, "allowPrivilegeEscalation is not false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            fail(where, "capabilities do not drop ALL")
        if (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            fail(where, "seccompProfile is not RuntimeDefault")
        resources = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (resources.get(kind) or {}):
                    fail(where, f"no {kind}.{r}")
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                fail(where, f"mounts the undefined volume {m.get('name')}")
        for e in c.get("envFrom") or []:
            name = (e.get("configMapRef") or {}).get("name")
            if name and name not in config_maps:
                fail(where, f"envFrom names the missing ConfigMap {name}")

    ctl = [c for c in containers(dep, init=False) if c.get("name") == CONTROLLER]
    if len(ctl) != 1:
        fail(df, f"no container named {CONTROLLER}")
        return
    ctl = ctl[0]
    where = f"{df} container {CONTROLLER}"
    argv = (ctl.get("command") or []) + (ctl.get("args") or [])
    source = argv_value(argv, "-f", "--filename", "")
    manifests = [
        m
        for m in ctl.get("volumeMounts") or []
        if source == m["mountPath"] or source.startswith(m["mountPath"] + "/")
    ]
    if not manifests:
        fail(where, "the -f path is on no mounted volume")
    elif not manifests[0].get("readOnly"):
        fail(where, "the manifests volume is not mounted read-only")
    env = {e["name"]: e for e in ctl.get("env") or []}
    for name, field in (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace")):
        if (env.get(name, {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") != field:
            fail(where, f"{name} does not come from {field}")
    if "AWS_REGION" not in env:
        fail(where, "no AWS_REGION")
    if argv_value(argv, None, "--leader-election") != "kubernetes":
        fail(where, "--leader-election is not kubernetes")
    ports = {p.get("name"): p.get("containerPort") for p in ctl.get("ports") or []}
    if check_listen(where, argv) and PORT not in ports.values():
        fail(where, f"no containerPort {PORT}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (ctl.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path:
            fail(where, f"{probe} does not GET {path}")
        if get.get("port") not in ports and get.get("port") not in ports.values():
            fail(where, f"{probe} port {get.get('port')} is no container port")
    svc_ports = {p.get("name"): p for p in svc.get("spec", {}).get("ports") or []}
    for name, p in svc_ports.items():
        if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
            fail(sf, f"port {name}: targetPort {p.get('targetPort')} is no container port")
    if "http-metrics" not in svc_ports:
        fail(sf, "no port named http-metrics")

    # Prometheus: the ServiceMonitor selects the Service and names one of its ports.
    if not subset(sm.get("spec", {}).get("selector", {}).get("matchLabels"), svc.get("metadata", {}).get("labels") or {}):
        fail(mf, "spec.selector does not select the Service")
    for ep in sm.get("spec", {}).get("endpoints") or []:
        if ep.get("port") not in svc_ports:
            fail(mf, f"endpoint port {ep.get('port')} is not a port of the Service")
        if ep.get("path", "/metrics") != "/metrics":
            fail(mf, f"endpoint path {ep.get('path')} is not /metrics")
    print(f"ok {df} and the objects it uses: references, selectors, security settings")


def argv_value(argv, short, long, default=None):
    """The value of an option in an argv (`--long VALUE`, `--long=VALUE`, `-s VALUE`)."""
    for i, a in enumerate(argv):
        if a in (short, long) and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(long + "="):
            return a[len(long) + 1:]
    return default


def check_listen(where, argv):
    """--listen binds all interfaces on PORT (the default, loopback, is unreachable)."""
    listen = argv_value(argv, None, "--listen")
    if listen != f"0.0.0.0:{PORT}":
        fail(where, f"--listen is {listen}, not 0.0.0.0:{PORT}")
        return False
    return True


# --- ECS -------------------------------------------------------------------------------

# Fargate's task sizes: CPU units -> allowed memory (MiB).
FARGATE_SIZES = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}


def check_enums(value, shape, where, path=""):
    """botocore's ParamValidator leaves enum values unchecked: check them here."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                check_enums(v, shape.members[k], where, f"{path}.{k}" if path else k)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            check_enums(v, shape.member, where, f"{path}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        for k, v in value.items():
            check_enums(v, shape.value, where, f"{path}.{k}")
    elif shape.type_name == "string" and getattr(shape, "enum", None) and value not in shape.enum:
        fail(where, f"{path}: {value!r} is not one of {', '.join(shape.enum)}")


def ecs(directory):
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("ecs")
    loaded = {}
    for name, operation in (("task-definition.json", "RegisterTaskDefinition"), ("service.json", "CreateService")):
        path = os.path.join(directory, name)
        try:
            with open(path) as f:
                params = json.load(f)
        except (OSError, ValueError) as e:
            fail(path, f"cannot read: {e}")
            continue
        shape = model.operation_model(operation).input_shape
        before = len(problems)
        report = ParamValidator().validate(params, shape)
        if report.has_errors():
            for line in report.generate_report().splitlines():
                fail(path, f"{line} ({operation})")
        check_enums(params, shape, path)
        if len(problems) == before:
            print(f"ok {path}: input of ECS {operation} (botocore {botocore.__version__} model)")
        loaded[name] = (path, params)
    if len(loaded) == 2:
        check_task_definition(*loaded["task-definition.json"])
        check_service(*loaded["service.json"], loaded["task-definition.json"][1])


def check_task_definition(path, td):
    if "FARGATE" not in (td.get("requiresCompatibilities") or []):
        fail(path, "requiresCompatibilities lacks FARGATE")
    if td.get("networkMode") != "awsvpc":
        fail(path, "networkMode is not awsvpc")
    rp = td.get("runtimePlatform") or {}
    if rp.get("cpuArchitecture") != "ARM64" or rp.get("operatingSystemFamily") != "LINUX":
        fail(path, "runtimePlatform is not LINUX/ARM64")
    try:
        cpu, memory = int(td.get("cpu")), int(td.get("memory"))
        if memory not in FARGATE_SIZES.get(cpu, []):
            fail(path, f"cpu {cpu} with memory {memory} is no Fargate task size")
    except (TypeError, ValueError):
        fail(path, "cpu and memory must be set (numbers, as strings)")
    for role in ("taskRoleArn", "executionRoleArn"):
        if not re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+", td.get(role) or ""):
            fail(path, f"{role} is not an IAM role ARN")
    volumes = {v.get("name") for v in td.get("volumes") or []}
    containers = td.get("containerDefinitions") or []
    for c in containers:
        where = f"{path} container {c.get('name')}"
        user = str(c.get("user", ""))
        uid = user.split(":")[0]
        if not uid.isdigit() or int(uid) == 0:
            fail(where, f"user {user!r} is not a numeric non-root uid")
        if c.get("readonlyRootFilesystem") is not True:
            fail(where, "readonlyRootFilesystem is not true")
        if c.get("privileged"):
            fail(where, "privileged")
        drop = (((c.get("linuxParameters") or {}).get("capabilities") or {}).get("drop")) or []
        if "ALL" not in drop:
            fail(where, "capabilities do not drop ALL")
        log = c.get("logConfiguration") or {}
        options = log.get("options") or {}
        if log.get("logDriver") != "awslogs" or not {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} <= set(options):
            fail(where, "no awslogs log configuration (group, region, stream prefix)")
        for m in c.get("mountPoints") or []:
            if m.get("sourceVolume") not in volumes:
                fail(where, f"mounts the undefined volume {m.get('sourceVolume')}")
        if c.get("healthCheck"):
            fail(where, "a healthCheck: the image has no shell or curl to run one")
    ctl = [c for c in containers if c.get("name") == CONTROLLER]
    if len(ctl) != 1:
        fail(path, f"no container named {CONTROLLER}")
        return
    ctl = ctl[0]
    where = f"{path} container {CONTROLLER}"
    argv = ctl.get("command") or []
    if check_listen(where, argv) and PORT not in [p.get("containerPort") for p in ctl.get("portMappings") or []]:
        fail(where, f"no portMapping for {PORT}")
    election = argv_value(argv, None, "--leader-election") or ""
    if not election.startswith("dynamodb:"):
        fail(where, "--leader-election is not dynamodb:TABLE")
    if not any(m.get("containerPath") == "/tmp" for m in ctl.get("mountPoints") or []):
        fail(where, "no writable /tmp under the read-only root filesystem")
    print(f"ok {path}: Fargate, ARM64, non-root, read-only, awslogs, leader election")


def check_service(path, svc, td):
    if svc.get("launchType") != "FARGATE":
        fail(path, "launchType is not FARGATE")
    if svc.get("desiredCount") != 2:
        fail(path, "desiredCount is not 2")
    dc = svc.get("deploymentConfiguration") or {}
    # Replace tasks one at a time, never more than desiredCount running.
    if dc.get("minimumHealthyPercent") != 50 or dc.get("maximumPercent") != 100:
        fail(path, "deploymentConfiguration is not minimumHealthyPercent 50 / maximumPercent 100")
    family = td.get("family")
    if svc.get("taskDefinition") != family and not str(svc.get("taskDefinition", "")).startswith(f"{family}:"):
        fail(path, f"taskDefinition is not the family {family}")
    vpc = (svc.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    if not vpc.get("subnets") or not vpc.get("securityGroups"):
        fail(path, "awsvpcConfiguration lacks subnets or security groups")
    print(f"ok {path}: FARGATE, 2 tasks, 50/100 % deployments, the task definition's family")


# --- Command lines ----------------------------------------------------------------------


def controller_args(k8s_dir, ecs_dir):
    path = os.path.join(k8s_dir, "deployment.yaml")
    found = 0
    for obj in load_yaml(path):
        for c in containers(obj, init=False) if obj.get("kind") == "Deployment" else []:
            if c.get("name") == CONTROLLER:
                found += 1
                for a in (c.get("command") or []) + (c.get("args") or []):
                    print(f"{path}\t{a}")
    path = os.path.join(ecs_dir, "task-definition.json")
    with open(path) as f:
        td = json.load(f)
    for c in td.get("containerDefinitions") or []:
        if c.get("name") == CONTROLLER:
            found += 1
            for a in (c.get("entryPoint") or []) + (c.get("command") or []):
                print(f"{path}\t{a}")
    if found != 2:
        fail(f"{k8s_dir}, {ecs_dir}", f"expected one {CONTROLLER} container in each, found {found}")


def main(argv):
    commands = {"kubernetes": (kubernetes, 1), "ecs": (ecs, 1), "controller-args": (controller_args, 2)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) - 2 != commands[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func, _ = commands[argv[1]]
    func(*argv[2:])
    for p in problems:
        print(f"FAIL {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
