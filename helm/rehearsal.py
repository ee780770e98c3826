"""A rehearsal of the chart without Kubernetes: render helm/tern, then start on this machine
what it would start, with the environment its ConfigMap, Secret and Deployments give each
pod — the migration Job once, then 2 api, 3 gateway and 2 worker processes with
`--no-migrate` — and run a short chat load through them.

The only departures from the rendered pods: every process listens on 127.0.0.1 on ports of
its own (pods each have their own address), and TERN_DATA_DIR is a temporary directory (the
pods' emptyDir). Node ids are pod-like names, as TERN_NODE_ID from metadata.name gives.

Load: users connect round-robin to the three gateways; each sends direct messages to a
peer on another gateway over the WebSocket, and the server API (alternating between the two
api processes, signed requests) sends more between users on different gateways. Every
acknowledged message must reach its recipient exactly once. Then one gateway is stopped as
Kubernetes would (SIGTERM after the preStop sleep): its clients must be closed with 1012,
reconnect to the other gateways and exchange messages again.

Run through helm/rehearsal.sh, which provides the tools and the binary.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import http.client
import http.server
import threading
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import helm_python as helm
import websockets
import yaml

HELM_DIR = Path(__file__).resolve().parent
CHART = HELM_DIR / "tern"
RELEASE = "tern"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432"


def log(*a):
    print("rehearsal:", *a, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- What the chart would run ------------------------------------------------------------


def render(vals):
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(vals, name=RELEASE, namespace="rehearsal", is_install=True)
    docs = []
    for path, text in out.items():
        if not path.endswith("NOTES.txt"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def pod_env(pod_spec, docs, pod_name):
    """The environment Kubernetes would give the pod's container: envFrom ConfigMaps, then env
    (values, Secret keys, the pod name)."""
    cms = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    sec = {
        d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
        for d in docs
        if d["kind"] == "Secret"
    }
    (c,) = pod_spec["containers"]
    env = {}
    for src in c.get("envFrom", []):
        env.update(cms[src["configMapRef"]["name"]])
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        vf = e["valueFrom"]
        if "fieldRef" in vf:
            assert vf["fieldRef"]["fieldPath"] == "metadata.name"
            env[e["name"]] = pod_name
        elif "secretKeyRef" in vf:
            ref = vf["secretKeyRef"]
            value = sec.get(ref["name"], {}).get(ref["key"])
            if value is None:
                assert ref.get("optional"), f"secret {ref['name']}/{ref['key']} missing and not optional"
                continue
            env[e["name"]] = value
    return c["args"], env


class Proc:
    def __init__(self, name, role, args, env, binary, logdir):
        self.name, self.role = name, role
        self.http, self.grpc, self.metrics = free_port(), free_port(), free_port()
        self.data = tempfile.mkdtemp(prefix=f"{name}-")
        env = dict(env)
        # Pods have an address each; processes on one machine need ports each.
        env["TERN_HTTP_ADDR"] = f"127.0.0.1:{self.http}"
        env["TERN_GRPC_ADDR"] = f"127.0.0.1:{self.grpc}"
        env["TERN_METRICS_ADDR"] = f"127.0.0.1:{self.metrics}"
        env["TERN_DATA_DIR"] = self.data
        self.env = env
        self.log_path = Path(logdir) / f"{name}.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
        full.update(env)
        self.p = subprocess.Popen(
            [binary, *args],
            env=full,
            stdout=open(self.log_path, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def get(self, path, port=None):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port or self.http}{path}", timeout=3) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def metric(self, name):
        """Sum of every series of `name` on this process's metrics listener."""
        _, text = self.get("/metrics", self.metrics)
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)


# --- Clients -------------------------------------------------------------------------------


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def user_token(app_key, app_secret, user):
    now = int(time.time())
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"iss": app_key, "sub": user, "iat": now, "exp": now + 3600}).encode())
    sig = hmac.new(app_secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def signed_post(port, app_key, app_secret, path, payload):
    body = json.dumps(payload).encode()
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    to_sign = "\n".join(["TERN1-HMAC-SHA256", ts, nonce, "POST", path, "", hashlib.sha256(body).hexdigest()])
    sig = hmac.new(app_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Tern-App-Key": app_key,
        "X-Tern-Timestamp": ts,
        "X-Tern-Nonce": nonce,
        "X-Tern-Signature": f"v1={sig}",
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


class Client:
    """One SDK-like user on one gateway, over the tern.v1.json subprotocol."""

    def __init__(self, user, app_key, app_secret, received):
        self.user, self.app_key, self.app_secret = user, app_key, app_secret
        self.received = received  # msg_id -> list of (recipient, latency ms)
        self.acks = {}
        self.pending = {}
        self.next_id = 0
        self.closed_code = None
        self.ws = None
        self.gateway = None

    async def connect(self, gw):
        self.gateway = gw
        self.closed_code = None
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{gw.http}/v1/connect", subprotocols=["tern.v1.json"], ping_interval=20
        )
        await self.ws.send(json.dumps({"id": "auth", "auth": {"token": user_token(self.app_key, self.app_secret, self.user), "device_id": f"dev-{self.user}", "platform": "PLATFORM_DESKTOP"}}))
        first = json.loads(await self.ws.recv())
        assert "auth_ok" in first, first
        self.reader = asyncio.create_task(self.read())

    async def read(self):
        try:
            async for raw in self.ws:
                f = json.loads(raw)
                if "message" in f:
                    m = f["message"]
                    if m.get("sender") != self.user:
                        sent_at = m.get("content", {}).get("t")
                        lat = (time.time() - sent_at) * 1000 if sent_at else None
                        self.received.setdefault(m["msg_id"], []).append((self.user, lat))
                elif "send_ack" in f:
                    fut = self.pending.pop(f.get("id"), None)
                    if fut and not fut.done():
                        fut.set_result(f["send_ack"])
                elif "error" in f and f.get("id") in self.pending:
                    fut = self.pending.pop(f["id"])
                    if not fut.done():
                        fut.set_exception(RuntimeError(json.dumps(f["error"])))
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.ws.close_code is not None:
                self.closed_code = self.ws.close_code
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(RuntimeError("connection closed"))

    async def send(self, peer, n):
        self.next_id += 1
        rid = str(self.next_id)
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        frame = {"id": rid, "send": {"client_msg_id": f"{self.user}-{n}", "user": peer, "type": "custom", "content": {"data": "rehearsal", "t": time.time(), "n": n}}}
        await self.ws.send(json.dumps(frame))
        ack = await asyncio.wait_for(fut, 10)
        self.acks[ack["msg_id"]] = peer
        return ack["msg_id"]

    async def close(self):
        if self.ws is not None:
            await self.ws.close()


class Receiver:
    """A tenant's webhook endpoint: records the msg_id of every message.sent it is sent, and
    which attempt brought it."""

    def __init__(self, webhook_secret):
        self.secret = webhook_secret
        self.sent = {}
        self.bad_signatures = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sig = dict(p.split("=", 1) for p in self.headers.get("X-Tern-Signature", "").split(","))
                want = hmac.new(outer.secret.encode(), f"{sig.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(want, sig.get("v1", "")):
                    outer.bad_signatures += 1
                ev = json.loads(body)
                if ev.get("type") == "message.sent":
                    outer.sent[ev["data"]["msg_id"]] = ev["id"]
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- The rehearsal ---------------------------------------------------------------------------


def percentile(xs, q):
    xs = sorted(x for x in xs if x is not None)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def load(gateways, apis, app_key, app_secret, users, seconds, rate):
    received = {}
    clients = [Client(f"r{i}", app_key, app_secret, received) for i in range(users)]
    await asyncio.gather(*(c.connect(gateways[i % len(gateways)]) for i, c in enumerate(clients)))
    log(f"{users} users connected: " + ", ".join(f"{g.name} {sum(c.gateway is g for c in clients)}" for g in gateways))
    expected = {}  # msg_id -> recipient
    errors = []

    async def ws_sender(i, c):
        # The peer is the next user: always on another gateway.
        peer = f"r{(i + 1) % users}"
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                expected[await c.send(peer, n)] = peer
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors.append(f"ws {c.user}: {e}")
            n += 1
            await asyncio.sleep(1 / rate)

    async def api_sender():
        n = 0
        end = time.monotonic() + seconds
        loop = asyncio.get_running_loop()
        while time.monotonic() < end:
            frm, to = f"r{n % users}", f"r{(n + 2) % users}"
            api = apis[n % len(apis)]
            payload = {"from": frm, "to": {"user": to}, "client_msg_id": f"api-{n}", "type": "custom", "content": {"data": "rehearsal", "t": time.time(), "n": n}}
            status, body = await loop.run_in_executor(None, signed_post, api.http, app_key, app_secret, "/v1/messages", payload)
            if status == 200:
                expected[body["msg_id"]] = to
            else:
                errors.append(f"api {api.name}: {status} {body}")
            n += 1
            await asyncio.sleep(0.05)

    t0 = time.monotonic()
    await asyncio.gather(*(ws_sender(i, c) for i, c in enumerate(clients)), api_sender())
    ws_acked = sum(len(c.acks) for c in clients)
    # Deliveries still in flight.
    for _ in range(50):
        if all(m in received for m in expected):
            break
        await asyncio.sleep(0.1)
    took = time.monotonic() - t0
    delivered = sum(1 for m, to in expected.items() if any(u == to for u, _ in received.get(m, [])))
    dupes = sum(1 for m in expected if len(received.get(m, [])) > 1)
    lats = [lat for m in expected for _, lat in received.get(m, [])]
    return clients, received, {
        "expected": dict(expected),
        "acked": len(expected),
        "ws_acked": ws_acked,
        "api_acked": len(expected) - ws_acked,
        "delivered": delivered,
        "duplicates": dupes,
        "errors": errors,
        "p50_ms": percentile(lats, 0.5),
        "p99_ms": percentile(lats, 0.99),
        "seconds": took,
    }


async def drain(gateway, others, clients, pre_stop_sleep):
    """Stop `gateway` as the kubelet would; its clients must go elsewhere and keep talking."""
    held = [c for c in clients if c.gateway is gateway]
    # preStop: the pod leaves the endpoints and sleeps; new connections go to the others.
    await asyncio.sleep(pre_stop_sleep)
    t0 = time.monotonic()
    gateway.stop(signal.SIGTERM)
    await asyncio.gather(*(asyncio.wait_for(c.reader, 30) for c in held), return_exceptions=True)
    codes = [c.closed_code for c in held]
    for _ in range(300):
        if gateway.p.poll() is not None:
            break
        await asyncio.sleep(0.1)
    exit_code, exit_s = gateway.p.poll(), time.monotonic() - t0
    # The SDKs reconnect to any gateway (the Service sends them to the ones left).
    await asyncio.gather(*(c.connect(others[i % len(others)]) for i, c in enumerate(held)))
    received = held[0].received if held else {}
    sent = {}
    for c in held:
        peer = f"r{(int(c.user[1:]) + 1) % len(clients)}"
        sent[await c.send(peer, 100000)] = peer
    for _ in range(50):
        if all(m in received for m in sent):
            break
        await asyncio.sleep(0.1)
    after = sum(1 for m, to in sent.items() if any(u == to for u, _ in received.get(m, [])))
    return {"held": len(held), "codes": codes, "exit_code": exit_code, "exit_s": exit_s, "after_sent": len(sent), "after_delivered": after}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tern", required=True)
    ap.add_argument("--users", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=2.0, help="WebSocket messages per second per user")
    ap.add_argument("--keep-logs", default="")
    a = ap.parse_args()
    started = time.monotonic()
    tag = f"{os.getpid()}_{secrets.token_hex(3)}"
    db = f"tern_rehearsal_{tag}"
    prefix = f"rehearsal-{tag}"
    logdir = a.keep_logs or tempfile.mkdtemp(prefix="tern-rehearsal-logs-")
    os.makedirs(logdir, exist_ok=True)
    vals = {
        "secrets": {"masterKey": secrets.token_hex(32), "adminPassword": "rehearsal-admin-pw"},
        "postgresql": {"url": f"{PG_ADMIN}/{db}"},
        "redis": {"url": "redis://127.0.0.1:6379", "prefix": prefix},
        # The webhook receiver below listens on 127.0.0.1.
        "config": {"logFormat": "text", "log": "warn", "webhookAllowPrivate": True},
    }
    docs = render(vals)
    deploys = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    (job,) = [d for d in docs if d["kind"] == "Job"]
    hpa = {d["metadata"]["name"]: d for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    log(f"chart rendered: {len(docs)} manifests; database {db}, Redis prefix {prefix}; logs in {logdir}")

    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", f'create database "{db}"'], check=True)
    procs = []
    passed = False
    try:
        # 1. The pre-install hook: `tern migrate`, once.
        args, env = pod_env(job["spec"]["template"]["spec"], docs, f"{RELEASE}-migrate-x1")
        m = Proc(f"{RELEASE}-migrate", "migrate", args, env, a.tern, logdir)
        rc = m.p.wait(120)
        shutil.rmtree(m.data, ignore_errors=True)
        assert rc == 0, f"migrate failed ({rc}): {m.log_path.read_text()}"
        log(f"migration Job ({' '.join(args)}) done")

        # 2. The roles, as their Deployments say, at the HPAs' minimum (2 api, 3 gateway) or
        #    the fixed count (2 workers).
        counts = {}
        for role in ("api", "gateway", "worker"):
            name = f"{RELEASE}-{role}"
            counts[role] = hpa[name]["spec"]["minReplicas"] if name in hpa else deploys[name]["spec"]["replicas"]
        assert counts == {"api": 2, "gateway": 3, "worker": 2}, counts
        rs = secrets.token_hex(5)[:9]
        for role, n in counts.items():
            spec = deploys[f"{RELEASE}-{role}"]["spec"]["template"]["spec"]
            for i in range(n):
                pod = f"{RELEASE}-{role}-{rs}-{secrets.token_hex(3)[:5]}"
                args, env = pod_env(spec, docs, pod)
                assert "--no-migrate" in args
                procs.append(Proc(pod, role, args, env, a.tern, logdir))
        deadline = time.monotonic() + 90
        for p in procs:
            while True:
                status, body = p.get("/readyz")
                if status == 200:
                    break
                assert p.p.poll() is None, f"{p.name} exited: {p.log_path.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"{p.name} not ready: {body}"
                time.sleep(0.2)
        ready_s = time.monotonic() - started
        log(f"{len(procs)} processes ready ({', '.join(f'{n} {r}' for r, n in counts.items())}) after {ready_s:.1f} s")
        # Every node holds its pod name as its lease in Redis.
        nodes = subprocess.run(["redis-cli", "-h", "127.0.0.1", "zrange", f"{prefix}:{{nodes}}", "0", "-1"], capture_output=True, text=True, check=True).stdout.split()
        assert sorted(nodes) == sorted(p.name for p in procs), nodes
        log(f"node leases in Redis: {len(nodes)}, one per pod name")
        # /metrics only on the metrics listener, as the ConfigMap's TERN_METRICS_ADDR says.
        assert procs[0].get("/metrics")[0] == 404 and procs[0].get("/metrics", procs[0].metrics)[0] == 200

        # 3. A tenant and an app, with the CLI and an api pod's environment.
        api_env = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
        api_env.update(next(p for p in procs if p.role == "api").env)
        subprocess.run([a.tern, "tenant", "create", "Rehearsal", "--json"], env=api_env, check=True, capture_output=True)
        out = subprocess.run([a.tern, "app", "create", "--tenant", "Rehearsal", "--name", "chat", "--json"], env=api_env, check=True, capture_output=True, text=True).stdout
        app = json.loads(out)
        receiver = Receiver(app["webhook_secret"])
        subprocess.run(
            [a.tern, "webhook", "set", "--app", app["app_key"], "--url", f"http://127.0.0.1:{receiver.port}/tern", "--events", "message.sent"],
            env=api_env, check=True, capture_output=True,
        )

        gateways = [p for p in procs if p.role == "gateway"]
        apis = [p for p in procs if p.role == "api"]
        workers = [p for p in procs if p.role == "worker"]

        async def run():
            clients, received, r = await load(gateways, apis, app["app_key"], app["app_secret"], a.users, a.seconds, a.rate)
            sleep = deploys[f"{RELEASE}-gateway"]["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
            d = await drain(gateways[-1], gateways[:-1], clients, min(sleep, 2))
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
            return r, d

        r, d = asyncio.run(run())
        # The workers deliver message.sent for every message from the outbox.
        t0 = time.monotonic()
        while time.monotonic() - t0 < 60 and not all(m in receiver.sent for m in r["expected"]):
            time.sleep(0.2)
        hooks = sum(1 for m in r["expected"] if m in receiver.sent)
        hook_wait = time.monotonic() - t0
        by_worker = {}
        for w in workers:
            _, text = w.get("/metrics", w.metrics)
            by_worker[w.name] = int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith('tern_webhook_deliveries_total{outcome="delivered"')))
        # The series the alerts and the dashboard read, as the pods serve them.
        series_seen = {}
        for p, needle in [
            (apis[0], 'http_requests_total{method="GET",route="/readyz",status="200"}'),
            (apis[0], 'http_requests_total{method="POST",route="/v1/messages",status="200"}'),
            (gateways[0], "tern_gateway_connections "),
            (workers[0], 'tern_webhook_deliveries_total{outcome="delivered"}'),
        ]:
            series_seen[needle.strip()] = needle in p.get("/metrics", p.metrics)[1]
        log(f"series the alerts use, seen on the pods: {series_seen}")
        frames_out = {g.name: int(g.metric("tern_gateway_frames_out_total")) for g in gateways[:-1]}
        api_sends = {p.name: int(p.metric("tern_messages_total")) for p in apis}
        log(f"load: {r['acked']} messages acknowledged ({r['ws_acked']} over WebSocket, {r['api_acked']} through the server API on both api pods) in {r['seconds']:.1f} s")
        log(f"delivered to their recipients on other gateways: {r['delivered']}/{r['acked']}, duplicates {r['duplicates']}, errors {len(r['errors'])}; latency p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms")
        for e in r["errors"][:5]:
            log("  error:", e)
        log(f"frames out per remaining gateway: {frames_out}; server API messages per api pod: {api_sends}")
        log(
            f"drain: SIGTERM to {gateways[-1].name} after the preStop sleep; its {d['held']} clients closed with codes {sorted(set(d['codes']))}; "
            f"exit {d['exit_code']} after {d['exit_s']:.2f} s; reconnected elsewhere, {d['after_delivered']}/{d['after_sent']} messages delivered"
        )
        log(f"webhooks: message.sent received for {hooks}/{r['acked']} messages ({hook_wait:.1f} s after the load), bad signatures {receiver.bad_signatures}; delivered per worker {by_worker}")
        for w in workers:
            assert w.get("/readyz")[0] == 200
        ok = (
            r["acked"] > 0
            and r["delivered"] == r["acked"]
            and r["duplicates"] == 0
            and not r["errors"]
            and r["api_acked"] > 0
            and all(v > 0 for v in api_sends.values())
            and d["held"] > 0
            and set(d["codes"]) == {1012}
            and d["exit_code"] == 0
            and d["after_delivered"] == d["after_sent"]
            and all(series_seen.values())
            and hooks == r["acked"]
            and receiver.bad_signatures == 0
            and sum(by_worker.values()) >= hooks
        )
        log(f"{'PASSED' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s")
        passed = ok
        return 0 if ok else 1
    finally:
        for p in procs:
            p.stop()
        for p in procs:
            try:
                p.p.wait(40)
            except subprocess.TimeoutExpired:
                p.stop(signal.SIGKILL)
                p.p.wait()
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", f'drop database if exists "{db}" with (force)'], check=False)
        keys = subprocess.run(["redis-cli", "-h", "127.0.0.1", "--scan", "--pattern", f"{prefix}:*"], capture_output=True, text=True).stdout.split()
        for i in range(0, len(keys), 500):
            subprocess.run(["redis-cli", "-h", "127.0.0.1", "del", *keys[i : i + 500]], capture_output=True)
        for p in procs:
            shutil.rmtree(p.data, ignore_errors=True)
        if passed and not a.keep_logs:
            shutil.rmtree(logdir, ignore_errors=True)
        else:
            log(f"process logs kept in {logdir}")
        log(f"cleaned up: {len(procs)} processes stopped, database {db} dropped, {len(keys)} Redis keys removed")


if __name__ == "__main__":
    sys.exit(main())
