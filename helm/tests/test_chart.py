"""The tern chart, rendered offline with Helm's own engine (helm-python-sdk), linted, and every
manifest validated by kubernetes-validate --strict against two Kubernetes versions; then the
things an operator would notice: a Deployment per role, HPAs, PDBs, probes, security, no
secret in a ConfigMap, the drain, the migration hook, alerts on metrics the server has."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import pytest
import yaml
from helm_python import _native

HELM_DIR = Path(__file__).resolve().parent.parent
REPO = HELM_DIR.parent
CHART = HELM_DIR / "tern"
VALUES = Path(__file__).resolve().parent / "values"
ROLES = ("api", "gateway", "worker")
# The oldest the chart supports (lifecycle.preStop.sleep) and the newest the validator ships.
KUBE_VERSIONS = ("1.30.0", "1.37.0")
GOOD = ("defaults", "production", "existing-secret", "pulsar")
NAME, NAMESPACE = "tern", "chat"


def values(name):
    return yaml.safe_load((VALUES / f"{name}.yaml").read_text())


def render_raw(vals, api_versions=None, is_upgrade=False, kube_version=None):
    """Template path -> rendered text. `api_versions` plays the cluster's served APIs (what
    .Capabilities.APIVersions sees); the public render() has no such option, the native
    call it wraps does."""
    with helm.Chart.load(str(CHART)) as chart:
        opts = {"name": NAME, "namespace": NAMESPACE, "is_install": not is_upgrade, "is_upgrade": is_upgrade}
        if api_versions:
            opts["api_versions"] = list(api_versions)
        if kube_version:
            opts["kube_version"] = kube_version
        out = _native.call_string("helm_render", chart._raw(), json.dumps(vals), json.dumps(opts))
        return json.loads(out)


def docs_of(rendered):
    docs = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        for d in yaml.safe_load_all(text):
            if d:
                docs.append(d)
    return docs


def render(vals, **kw):
    return docs_of(render_raw(vals, **kw))


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container(deploy):
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


@pytest.fixture(scope="module", params=GOOD)
def rendered(request):
    return request.param, render(values(request.param))


# --- Render, lint, validate --------------------------------------------------------------


def test_lint_passes_with_every_values_file():
    for name in GOOD:
        report = helm.lint(str(CHART), values(name), strict=True, namespace=NAMESPACE)
        serious = [m for m in report["messages"] if m["severity"] >= 2]
        assert not serious and not report["errors"], (name, report)


def test_a_cluster_older_than_1_30_is_refused():
    # preStop.sleep, the gateways' drain, needs 1.30 (Chart.yaml's kubeVersion says so too).
    with pytest.raises(helm.HelmRenderError) as e:
        render(values("defaults"), kube_version="v1.29.4")
    assert "Kubernetes v1.29.4 is too old for this chart" in str(e.value)
    assert by_kind(render(values("defaults"), kube_version="v1.30.0"), "Deployment")


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_every_manifest_passes_kubernetes_validate_strict(tmp_path, kube):
    files = []
    crds = []
    for name in GOOD:
        for i, d in enumerate(render(values(name), api_versions=["monitoring.coreos.com/v1/ServiceMonitor"])):
            if d["apiVersion"].startswith("monitoring.coreos.com/"):
                crds.append(d)  # no schema ships for the operator's kinds: checked below
                continue
            f = tmp_path / f"{name}-{i:02d}-{d['kind']}.yaml"
            f.write_text(yaml.safe_dump(d))
            files.append(str(f))
    assert len(files) > 40 and crds
    r = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "kubernetes-validate"), "--strict", "-k", kube, *files],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("passed for resource") == len(files), r.stdout


def test_the_validator_catches_a_bad_manifest(tmp_path):
    # The check above can fail: a misspelt field in a Deployment is refused under --strict.
    d = by_kind(render(values("defaults")), "Deployment")[f"{NAME}-gateway"]
    container(d)["readinesProbe"] = container(d).pop("readinessProbe")
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(d))
    r = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "kubernetes-validate"), "--strict", "-k", KUBE_VERSIONS[0], str(f)],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "readinesProbe" in r.stdout + r.stderr


# --- Values that must fail, with the schema's (or the chart's) message ------------------


def test_a_wrong_type_fails_with_the_schemas_message():
    with pytest.raises(helm.HelmValuesError) as e:
        render(values("bad-types"))
    assert "at '/gateway/replicas': got string, want integer" in str(e.value)
    report = helm.lint(str(CHART), values("bad-types"))
    assert any("/gateway/replicas" in err for err in report["errors"]), report


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"secrets": {"masterKey": "abcd"}}, "at '/secrets/masterKey'"),
        ({"redis": {"url": "rediss://cache:6379"}}, "at '/redis/url'"),
        ({"redis": {"prefix": "tern prod"}}, "at '/redis/prefix'"),
        ({"config": {"logFormat": "xml"}}, "at '/config/logFormat'"),
        ({"gatway": {"replicas": 2}}, "additional properties 'gatway' not allowed"),
        ({"api": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}}, "at '/api/autoscaling/targetCPUUtilizationPercentage'"),
        ({"ingress": {"websocketTimeoutSeconds": 30}}, "at '/ingress/websocketTimeoutSeconds'"),
    ],
)
def test_bad_values_name_the_value(patch, message):
    vals = values("defaults")
    for k, v in patch.items():
        vals[k] = {**vals.get(k, {}), **v} if isinstance(v, dict) else v
    with pytest.raises(helm.HelmValuesError) as e:
        render(vals)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "vals, message",
    [
        ({}, "secrets.masterKey is required"),
        ({"secrets": {"masterKey": "ab" * 32}}, "postgresql.url is required"),
        ({"secrets": {"masterKey": "ab" * 32}, "postgresql": {"url": "postgres://x@db/t"}}, "redis.url is required"),
        ({**values("defaults"), "pulsar": {"enabled": True}}, "pulsar.url is empty"),
        (
            {**values("defaults"), "gateway": {"preStopSleepSeconds": 20, "terminationGracePeriodSeconds": 45}},
            "gateway.terminationGracePeriodSeconds (45) must be more than gateway.preStopSleepSeconds + 30 (50)",
        ),
        (
            {**values("defaults"), "worker": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
            "worker.autoscaling.minReplicas (5) is above worker.autoscaling.maxReplicas (2)",
        ),
    ],
)
def test_missing_or_inconsistent_values_stop_the_install(vals, message):
    with pytest.raises(helm.HelmError) as e:
        render(vals)
    assert message in str(e.value)


# --- What the pods run -------------------------------------------------------------------


def test_each_role_is_its_own_deployment(rendered):
    name, docs = rendered
    deps = by_kind(docs, "Deployment")
    assert set(deps) == {f"{NAME}-{r}" for r in ROLES}, name
    for role in ROLES:
        d = deps[f"{NAME}-{role}"]
        c = container(d)
        assert c["args"] == ["serve", "--roles", role, "--no-migrate"], (name, c["args"])
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == role
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert ports["http"] == 8080 and ports["metrics"] == 9100
        assert ("grpc" in ports) == (role == "api"), (role, ports)
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_replicas_hpas_and_pdbs_per_role(rendered):
    name, docs = rendered
    vals = helm.Chart.load(str(CHART)).merge_values(values(name))
    deps, hpas, pdbs = by_kind(docs, "Deployment"), by_kind(docs, "HorizontalPodAutoscaler"), by_kind(docs, "PodDisruptionBudget")
    for role in ROLES:
        rv, d, key = vals[role], deps[f"{NAME}-{role}"], f"{NAME}-{role}"
        if rv["autoscaling"]["enabled"]:
            # The HPA owns the count: a replicas field would fight it at every upgrade.
            assert "replicas" not in d["spec"], (name, role)
            h = hpas[key]
            assert h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": key}
            assert h["spec"]["minReplicas"] == rv["autoscaling"]["minReplicas"]
            assert h["spec"]["maxReplicas"] == rv["autoscaling"]["maxReplicas"]
            (m,) = h["spec"]["metrics"]
            assert m["resource"]["name"] == "cpu"
        else:
            assert d["spec"]["replicas"] == rv["replicas"] and key not in hpas, (name, role)
        pdb = pdbs[key]
        assert pdb["spec"]["maxUnavailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]
        assert d["spec"]["template"]["spec"]["containers"][0]["resources"] == rv["resources"]


def test_defaults_autoscale_api_and_gateways_and_keep_fixed_workers():
    docs = render(values("defaults"))
    assert set(by_kind(docs, "HorizontalPodAutoscaler")) == {f"{NAME}-api", f"{NAME}-gateway"}
    assert by_kind(docs, "Deployment")[f"{NAME}-worker"]["spec"]["replicas"] == 2
    gw = by_kind(docs, "HorizontalPodAutoscaler")[f"{NAME}-gateway"]
    assert gw["spec"]["minReplicas"] == 3
    # Gateways leave one at a time, slowly: each one removed moves its sessions.
    assert gw["spec"]["behavior"]["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]


def test_probes_on_healthz_and_readyz(rendered):
    _, docs = rendered
    for d in by_kind(docs, "Deployment").values():
        c = container(d)
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_security_context_everywhere(rendered):
    name, docs = rendered
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 4, name  # three roles and the migration Job
    for spec in pods:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] != 0
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            # The only writable places: emptyDirs.
            vols = {v["name"]: v for v in spec["volumes"]}
            for m in c.get("volumeMounts", []):
                assert "emptyDir" in vols[m["name"]], m


def test_node_id_is_the_pod_name(rendered):
    _, docs = rendered
    for d in by_kind(docs, "Deployment").values():
        e = env_of(container(d))["TERN_NODE_ID"]
        assert e["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_gateways_drain_before_they_stop(rendered):
    name, docs = rendered
    vals = helm.Chart.load(str(CHART)).merge_values(values(name))
    deps = by_kind(docs, "Deployment")
    gw = deps[f"{NAME}-gateway"]
    sleep = container(gw)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sleep == vals["gateway"]["preStopSleepSeconds"] >= 5
    # The sleep, then up to 30 s for the server to close its sessions with 1012.
    assert gw["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > sleep + 30
    for role in ("api", "worker"):
        spec = deps[f"{NAME}-{role}"]["spec"]["template"]["spec"]
        assert "lifecycle" not in spec["containers"][0]
        assert spec["terminationGracePeriodSeconds"] > 30  # the server's own drain bound


# --- Settings and secrets ----------------------------------------------------------------


def server_settings():
    """The TERN_* variables the server reads (src/config.rs KEYS)."""
    text = (REPO / "src" / "config.rs").read_text()
    block = text.split("const KEYS: &[&str] = &[", 1)[1].split("];", 1)[0]
    return {"TERN_" + k.upper() for k in re.findall(r'"([a-z0-9_]+)"', block)}


def test_every_variable_the_chart_sets_is_one_the_server_reads(rendered):
    name, docs = rendered
    known = server_settings()
    assert "TERN_NODE_ID" in known and len(known) > 20
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == NAME]
    names = set(cm["data"]) | {n for d in by_kind(docs, "Deployment").values() for n in env_of(container(d))}
    tern = {n for n in names if n.startswith("TERN_")}
    assert tern <= known, (name, tern - known)
    others = names - tern
    assert others <= {"OTEL_EXPORTER_OTLP_ENDPOINT", "RUST_BACKTRACE"}, others
    for must in ("TERN_MASTER_KEY", "TERN_DATABASE_URL", "TERN_REDIS_URL", "TERN_NODE_ID", "TERN_HTTP_ADDR", "TERN_METRICS_ADDR"):
        assert must in names, (name, must)


def secret_strings(vals):
    out = [vals.get("secrets", {}).get("masterKey"), vals.get("secrets", {}).get("adminPassword")]
    for svc in ("postgresql", "redis", "pulsar"):
        url = vals.get(svc, {}).get("url")
        if url:
            out.append(url)
            m = re.match(r"^[a-z+]+://[^:@/]*:([^@]+)@", url)
            if m:
                out.append(m.group(1))  # the password alone
    return [s for s in out if s]


def test_no_secret_value_outside_a_secret(rendered):
    name, docs = rendered
    secrets = secret_strings(values(name))
    for d in docs:
        if d["kind"] == "Secret":
            continue
        text = yaml.safe_dump(d)
        for s in secrets:
            assert s not in text, (name, d["kind"], d["metadata"]["name"])
    for d in docs:
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == NAME:
            for k in d["data"]:
                assert not re.search(r"KEY|PASSWORD|SECRET|_URL$", k), (name, k)


def test_the_secret_holds_what_the_pods_read():
    vals = values("production")
    docs = render(vals)
    secret = by_kind(docs, "Secret")[NAME]
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["TERN_MASTER_KEY"] == vals["secrets"]["masterKey"]
    assert data["TERN_DATABASE_URL"] == vals["postgresql"]["url"]
    assert data["TERN_REDIS_URL"] == vals["redis"]["url"]
    assert data["TERN_ADMIN_PASSWORD"] == vals["secrets"]["adminPassword"]
    for d in by_kind(docs, "Deployment").values():
        env = env_of(container(d))
        for key in ("TERN_MASTER_KEY", "TERN_DATABASE_URL", "TERN_REDIS_URL", "TERN_ADMIN_PASSWORD"):
            ref = env[key]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == NAME and ref["key"] in data
        assert container(d)["envFrom"] == [{"configMapRef": {"name": NAME}}]
    cm = by_kind(docs, "ConfigMap")[NAME]["data"]
    assert cm["TERN_REDIS_PREFIX"] == "tern-prod" and cm["TERN_MAX_CONNECTIONS"] == "100000"
    assert cm["TERN_HTTP_ADDR"] == "0.0.0.0:8080" and cm["TERN_METRICS_ADDR"] == "0.0.0.0:9100"


def test_an_existing_secret_replaces_the_charts():
    vals = values("existing-secret")
    docs = render(vals)
    assert by_kind(docs, "Secret") == {}, "no Secret of the chart's own, not even the migration copy"
    for d in by_kind(docs, "Deployment").values():
        env = env_of(container(d))
        refs = {k: env[k]["valueFrom"]["secretKeyRef"] for k in ("TERN_MASTER_KEY", "TERN_DATABASE_URL", "TERN_REDIS_URL")}
        assert {r["name"] for r in refs.values()} == {"tern-managed"}
        assert refs["TERN_MASTER_KEY"]["key"] == "master-key" and refs["TERN_DATABASE_URL"]["key"] == "database-url"
    (job,) = by_kind(docs, "Job").values()
    ref = env_of(job["spec"]["template"]["spec"]["containers"][0])["TERN_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "tern-managed", "key": "database-url"}


def test_pulsar_on_passes_its_url_through_the_secret():
    raw = render_raw(values("pulsar"))
    docs = docs_of(raw)
    assert "TERN_PULSAR_URL" in by_kind(docs, "Secret")[NAME]["data"]
    for d in by_kind(docs, "Deployment").values():
        assert env_of(container(d))["TERN_PULSAR_URL"]["valueFrom"]["secretKeyRef"]["key"] == "TERN_PULSAR_URL"
    # The default image is built without the Pulsar bus and refuses TERN_PULSAR_URL: the
    # install says which build it needs, and that Redis must be on too, rather than
    # crash-loop quietly.
    notes = raw["tern/templates/NOTES.txt"]
    assert "--features pulsar" in notes and "Redis must be enabled" in notes
    for d in by_kind(render(values("defaults")), "Deployment").values():
        assert "TERN_PULSAR_URL" not in env_of(container(d))


def test_a_changed_setting_rolls_the_pods():
    a = by_kind(render(values("defaults")), "Deployment")[f"{NAME}-api"]
    vals = values("defaults")
    vals["config"] = {"heartbeatSeconds": 20}
    b = by_kind(render(vals), "Deployment")[f"{NAME}-api"]
    ann = lambda d: d["spec"]["template"]["metadata"]["annotations"]
    assert ann(a)["checksum/config"] != ann(b)["checksum/config"]
    assert ann(a)["checksum/secret"] == ann(b)["checksum/secret"]


# --- Migrations ----------------------------------------------------------------------------


def test_migrations_run_once_as_a_hook_before_the_roles():
    for upgrade in (False, True):
        docs = render(values("defaults"), is_upgrade=upgrade)
        (job,) = by_kind(docs, "Job").values()
        ann = job["metadata"]["annotations"]
        assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never" and spec["containers"][0]["args"] == ["migrate"]
        # The hook runs before the release's Secret exists: it reads a hook copy made first.
        ref = env_of(spec["containers"][0])["TERN_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        copy = by_kind(docs, "Secret")[ref["name"]]
        assert copy["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(copy["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(ann["helm.sh/hook-weight"])
        assert set(copy["data"]) == {"TERN_DATABASE_URL"}, "the migration needs no master key"


def test_without_the_hook_the_roles_migrate_themselves():
    vals = values("defaults")
    vals["migrations"] = {"enabled": False}
    docs = render(vals)
    assert by_kind(docs, "Job") == {}
    for d in by_kind(docs, "Deployment").values():
        assert "--no-migrate" not in container(d)["args"]


# --- Services and Ingress -----------------------------------------------------------------


def test_services_reach_the_right_pods(rendered):
    _, docs = rendered
    svcs = by_kind(docs, "Service")
    deps = by_kind(docs, "Deployment")
    for role, ports in (("api", {"http", "grpc"}), ("gateway", {"http"})):
        s = svcs[f"{NAME}-{role}"]
        assert {p["name"] for p in s["spec"]["ports"]} == ports
        assert s["spec"]["selector"] == deps[f"{NAME}-{role}"]["spec"]["selector"]["matchLabels"]
        assert "sessionAffinity" not in s["spec"]
    m = svcs[f"{NAME}-metrics"]
    assert m["spec"]["publishNotReadyAddresses"] is True and m["spec"]["clusterIP"] == "None"
    assert "app.kubernetes.io/component" not in m["spec"]["selector"], "every role is scraped"


def test_ingress_sends_websockets_to_gateways_with_long_timeouts():
    docs = render(values("production"))
    ings = by_kind(docs, "Ingress")
    main = ings[NAME]
    ann = main["metadata"]["annotations"]
    assert int(ann["nginx.ingress.kubernetes.io/proxy-read-timeout"]) == 7200
    assert int(ann["nginx.ingress.kubernetes.io/proxy-send-timeout"]) == 7200
    assert ann["cert-manager.io/cluster-issuer"] == "letsencrypt"
    paths = {p["path"]: p for p in main["spec"]["rules"][0]["http"]["paths"]}
    assert paths["/v1/connect"]["backend"]["service"]["name"] == f"{NAME}-gateway"
    assert paths["/"]["backend"]["service"]["name"] == f"{NAME}-api"
    assert main["spec"]["tls"][0]["secretName"] == "chat-example-com-tls"
    grpc = ings[f"{NAME}-grpc"]
    assert grpc["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    assert grpc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["name"] == "grpc"
    assert by_kind(render(values("defaults")), "Ingress") == {}


# --- Monitoring ---------------------------------------------------------------------------


def server_metric_names():
    names = set()
    for path in REPO.glob("*/src/**/*.rs"):
        if "target" in path.parts:
            continue
        names |= set(re.findall(r'(?:counter|gauge|histogram)!\(\s*"([a-z_]+)"', path.read_text()))
    return names


def metrics_in(expr):
    words = set(re.findall(r"\b([a-z_]+)(?:\{|\[)", expr))
    return {w for w in words if w not in {"rate", "increase", "sum", "max", "by", "histogram_quantile"}}


def strip_suffix(m):
    return re.sub(r"_(bucket|sum|count)$", "", m)


def test_operator_resources_follow_the_cluster():
    kinds = lambda docs: {d["kind"] for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")}
    assert kinds(render(values("defaults"))) == set()
    served = ["monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule"]
    assert kinds(render(values("defaults"), api_versions=served)) == {"ServiceMonitor", "PrometheusRule"}
    off = {**values("defaults"), "metrics": {"prometheusOperator": "false"}}
    assert kinds(render(off, api_versions=served)) == set()
    assert kinds(render(values("production"))) == {"ServiceMonitor", "PrometheusRule"}


def test_service_monitor_scrapes_the_metrics_service():
    docs = render(values("production"))
    (sm,) = by_kind(docs, "ServiceMonitor").values()
    svc = by_kind(docs, "Service")[f"{NAME}-metrics"]
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "metrics"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]


def test_alerts_cover_what_the_issue_names_on_metrics_the_server_has():
    docs = render(values("production"))
    (rule,) = by_kind(docs, "PrometheusRule").values()
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    for must in ("TernHighErrorRate", "TernWebhookDeadEvents", "TernGatewaySaturated", "TernDependencyUnavailable"):
        assert must in alerts
    known = server_metric_names() | {"up"}
    assert {"http_requests_total", "tern_gateway_connections", "tern_webhook_deliveries_total"} <= known
    for name, r in alerts.items():
        expr = r["expr"]
        used = {strip_suffix(m) for m in metrics_in(expr)}
        assert used and used <= known, (name, used - known)
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), name
        assert f'job="{NAME}-metrics"' in expr and f'namespace="{NAMESPACE}"' in expr, name
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"] and r["annotations"]["description"]
    # The thresholds come from the values.
    assert "/ 100000 > 80" in alerts["TernGatewaySaturated"]["expr"]
    assert "> 5" in alerts["TernHighErrorRate"]["expr"]
    assert 'route="/readyz", status="503"' in alerts["TernDependencyUnavailable"]["expr"]


def test_routes_in_alerts_are_the_servers_labels():
    # TernDependencyUnavailable counts the kubelet's /readyz probes by their route label.
    ops = (REPO / "tenant-api" / "src" / "ops.rs").read_text()
    assert '.route("/readyz", get(readyz))' in ops
    assert '"/healthz" | "/readyz" | "/metrics"' in ops


def test_the_dashboard_is_a_configmap_on_real_metrics():
    docs = render(values("defaults"))
    cm = by_kind(docs, "ConfigMap")[f"{NAME}-dashboard"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["tern.json"])
    assert dash["uid"] == "tern-overview"
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(panels) >= 12
    known = server_metric_names()
    for p in panels:
        for t in p["targets"]:
            used = {strip_suffix(m) for m in metrics_in(t["expr"])}
            assert used and used <= known, (p["title"], used - known)
    titles = " ".join(p["title"] for p in panels)
    for word in ("5xx", "WebSocket connections", "Webhook deliveries", "readyz" if False else "Unready"):
        assert word in titles, word


# --- The image ----------------------------------------------------------------------------


def test_hadolint_passes_on_the_dockerfile():
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    r = subprocess.run([hadolint, "--failure-threshold", "info", str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_can_fail():
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    bad = "FROM debian:latest\nRUN apt-get install -y curl\n"
    r = subprocess.run([hadolint, "-"], input=bad, capture_output=True, text=True)
    assert r.returncode != 0 and "DL3007" in r.stdout


def dockerfile_instructions():
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_builds_release_and_runs_minimal_and_non_root():
    ins = dockerfile_instructions()
    froms = [rest for w, rest in ins if w == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    assert froms[0].endswith("AS build")
    final = froms[-1]
    assert "distroless" in final and "nonroot" in final, final
    runs = " ".join(rest for w, rest in ins if w == "RUN")
    assert "cargo build --release --locked --bin tern" in runs
    final_stage = ins[max(i for i, (w, _) in enumerate(ins) if w == "FROM"):]
    assert any(w == "COPY" and rest.startswith("--from=build") for w, rest in final_stage)
    users = [rest for w, rest in final_stage if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    assert [rest for w, rest in final_stage if w == "ENTRYPOINT"] == ['["/usr/local/bin/tern"]']
    for w, rest in ins:
        if w in ("ENV", "ARG"):
            assert not re.search(r"(MASTER_KEY|PASSWORD|SECRET|DATABASE_URL|REDIS_URL)", rest, re.I), rest
        assert w != "ADD", "COPY only"
    # What the chart expects of the image.
    exposed = " ".join(rest for w, rest in ins if w == "EXPOSE").split()
    assert {"8080", "9090", "9100"} <= set(exposed)
    chart_values = helm.Chart.load(str(CHART)).values
    assert users[-1].split(":")[0] == str(chart_values["podSecurityContext"]["runAsUser"])


def test_dockerignore_keeps_build_output_and_secrets_out():
    lines = {l.strip() for l in (REPO / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")}
    for must in (".git", "target", "data", "**/master.key", "**/.env"):
        assert must in lines, must
    # ... but not what the build needs.
    for needed in ("src", "platform", "tenant-api", "push-gateway", "sdks/rust", "bench", "Cargo.toml", "Cargo.lock"):
        assert needed not in lines, needed


def dockerignored(path, patterns):
    """Docker's rule: a path is left out when a pattern matches it or one of its parent
    directories (the last matching pattern wins, `!` re-includes); `**` spans directories."""

    def match(pattern, p):
        rx = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                rx += ".*"
                i += 2
            elif pattern[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pattern[i])
                i += 1
        return re.fullmatch(rx, p) is not None

    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        if any(match(pat, p) for p in prefixes):
            excluded = not neg
    return excluded


def test_the_build_context_holds_a_loadable_workspace(tmp_path):
    # What `docker build .` would send, per .dockerignore: cargo must still find every
    # workspace member, the lock file, the proto files and the migrations.
    patterns = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    kept = [f for f in files if not dockerignored(f, patterns)]
    assert "Cargo.lock" in kept and "src/main.rs" in kept
    assert not any(f.startswith(("helm/", ".ci/", "docs/")) for f in kept)
    assert dockerignored("target/release/tern", patterns) and dockerignored("bench/target/x", patterns)
    assert dockerignored("data/master.key", patterns) and dockerignored("platform/x/master.key", patterns)
    for f in kept:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_bytes((REPO / f).read_bytes())
    assert any(f.startswith("platform/proto/") for f in kept) and any(f.startswith("platform/migrations/") for f in kept)
    r = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--locked", "--offline", "--format-version", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    bins = {t["name"] for p in json.loads(r.stdout)["packages"] for t in p["targets"] if "bin" in t["kind"]}
    assert "tern" in bins


# --- The alerts, evaluated by Prometheus's own promtool -----------------------------------


def promtool():
    path = os.environ.get("TERN_PROMTOOL", "")
    assert path and os.access(path, os.X_OK), "TERN_PROMTOOL must name promtool (helm/ci.sh provides it)"
    return path


def rules_file(tmp_path, keep_annotations=True):
    (rule,) = by_kind(render(values("production")), "PrometheusRule").values()
    groups = rule["spec"]["groups"]
    if not keep_annotations:
        # Unit tests compare expression, duration and labels; annotations are checked above.
        groups = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]} for g in groups]
    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump({"groups": groups}))
    return f


def test_promtool_accepts_the_rules(tmp_path):
    r = subprocess.run([promtool(), "check", "rules", str(rules_file(tmp_path))], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 8 rules found" in r.stdout, r.stdout


def series(metric, values_, **labels):
    base = {"namespace": NAMESPACE, "job": f"{NAME}-metrics", **labels}
    inner = ", ".join(f'{k}="{v}"' for k, v in base.items())
    return {"series": f"{metric}{{{inner}}}", "values": values_}


def test_each_alert_fires_when_it_should_and_only_then(tmp_path):
    """Synthetic series, one scenario per alert, each with a pod that must stay quiet; another
    release's pods (job other-metrics) never count. Production values: maxConnections
    100000, saturation 80 %, error rate 5 %."""
    other = {"job": "other-metrics"}
    inputs = [
        # /readyz failing on one pod (12 probes a minute answered 503), fine on another.
        series("http_requests_total", "0+12x30", pod="tern-api-a", route="/readyz", status="503", app_kubernetes_io_component="api"),
        series("http_requests_total", "0+12x30", pod="tern-api-b", route="/readyz", status="200", app_kubernetes_io_component="api"),
        # api: 10 of 110 requests a minute are 5xx (9 %); gateway: 1 of 101 (1 %).
        series("http_requests_total", "0+100x30", pod="tern-api-a", route="/v1/messages", status="200", app_kubernetes_io_component="api"),
        series("http_requests_total", "0+10x30", pod="tern-api-a", route="/v1/messages", status="500", app_kubernetes_io_component="api"),
        series("http_requests_total", "0+100x30", pod="tern-gateway-a", route="/v1/connect", status="101", app_kubernetes_io_component="gateway"),
        series("http_requests_total", "0+1x30", pod="tern-gateway-a", route="/v1/connect", status="503", app_kubernetes_io_component="gateway"),
        # One dead webhook event at minute 20.
        series("tern_webhook_deliveries_total", "0x19 1x10", pod="tern-worker-a", outcome="dead"),
        series("tern_webhook_deliveries_total", "0+50x30", pod="tern-worker-a", outcome="delivered"),
        # 85,000 sessions on one gateway (85 % of 100,000), 79,000 on another.
        series("tern_gateway_connections", "85000x30", pod="tern-gateway-a"),
        series("tern_gateway_connections", "79000x30", pod="tern-gateway-b"),
        series("connections_refused_total", "0+5x30", pod="tern-gateway-a"),
        series("connections_refused_total", "7x30", pod="tern-gateway-b"),
        series("tern_bus_dropped_total", "0+3x30", pod="tern-gateway-b"),
        series("tern_rate_limit_unchecked_total", "0+20x30", pod="tern-api-b"),
        series("up", "0x30", pod="tern-worker-b"),
        series("up", "1x30", pod="tern-worker-a"),
        # Another release in the namespace, failing everything: not ours to alert on.
        series("up", "0x30", pod="x-1", **other),
        series("tern_gateway_connections", "99000x30", pod="x-2", **other),
        series("tern_webhook_deliveries_total", "0+1x30", pod="x-3", outcome="dead", **other),
    ]

    def alert(name, at, *labelsets):
        return {"eval_time": at, "alertname": name, "exp_alerts": [{"exp_labels": ls} for ls in labelsets]}

    pod = lambda p, sev="warning": {"pod": p, "severity": sev}
    tests = [
        # Not yet: each alert's `for` has not run out.
        alert("TernDependencyUnavailable", "2m"),
        alert("TernDependencyUnavailable", "6m", pod("tern-api-a", "critical")),
        alert("TernHighErrorRate", "8m"),
        alert("TernHighErrorRate", "20m", {"app_kubernetes_io_component": "api", "severity": "critical"}),
        alert("TernWebhookDeadEvents", "15m"),
        alert("TernWebhookDeadEvents", "22m", {"severity": "warning"}),
        alert("TernGatewaySaturated", "10m", pod("tern-gateway-a")),
        alert("TernConnectionsRefused", "10m", pod("tern-gateway-a")),
        alert("TernGatewayDroppingDeliveries", "10m", pod("tern-gateway-b")),
        alert("TernRedisChecksSkipped", "10m", pod("tern-api-b")),
        alert("TernTargetDown", "10m", {"pod": "tern-worker-b", "severity": "warning", "namespace": NAMESPACE, "job": f"{NAME}-metrics"}),
    ]
    f = rules_file(tmp_path, keep_annotations=False)
    spec = tmp_path / "tests.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(f)],
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": inputs, "alert_rule_test": tests}],
            }
        )
    )
    r = subprocess.run([promtool(), "test", "rules", str(spec)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # ... and the check can fail: a saturation threshold of 90 % leaves gateway-a quiet.
    text = f.read_text().replace("/ 100000 > 80", "/ 100000 > 90")
    f.write_text(text)
    r = subprocess.run([promtool(), "test", "rules", str(spec)], capture_output=True, text=True)
    assert r.returncode != 0 and "TernGatewaySaturated" in r.stdout + r.stderr


def test_prometheus_operator_switch_takes_booleans_too():
    kinds = lambda docs: {d["kind"] for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")}
    on = {**values("defaults"), "metrics": {"prometheusOperator": True}}
    off = {**values("defaults"), "metrics": {"prometheusOperator": False}}
    assert kinds(render(on)) == {"ServiceMonitor", "PrometheusRule"}
    assert kinds(render(off, api_versions=["monitoring.coreos.com/v1/ServiceMonitor"])) == set()
    with pytest.raises(helm.HelmValuesError) as e:
        render({**values("defaults"), "metrics": {"prometheusOperator": "yes"}})
    assert "/metrics/prometheusOperator" in str(e.value)


def test_the_image_tag_defaults_to_the_servers_version():
    cargo = (REPO / "Cargo.toml").read_text()
    version = re.search(r'\[workspace\.package\][^\[]*?version = "([^"]+)"', cargo, re.S).group(1)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    d = by_kind(render(values("defaults")), "Deployment")[f"{NAME}-api"]
    assert container(d)["image"] == f"registry.example.com/tern/tern:{version}"


def test_network_policy_keeps_grpc_and_metrics_internal():
    assert by_kind(render(values("defaults")), "NetworkPolicy") == {}
    docs = render(values("production"))
    (np,) = by_kind(docs, "NetworkPolicy").values()
    sel = np["spec"]["podSelector"]["matchLabels"]
    for d in by_kind(docs, "Deployment").values():
        assert sel.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    rules = {r["ports"][0]["port"]: r.get("from") for r in np["spec"]["ingress"]}
    assert rules["http"] is None, "clients reach the HTTP port from anywhere"
    assert rules["grpc"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "backend"}}}]
    assert rules["metrics"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    # Named ports: each must exist on the pods that serve it.
    ports = {p["name"] for d in by_kind(docs, "Deployment").values() for p in container(d)["ports"]}
    assert set(rules) <= ports
