// Starts a real `tern serve` for a test: a fresh data directory, port 0, the address read
// from the banner (as tests/common/mod.rs does). The binary: $TERN_BIN, else a debug
// build from this checkout (`cargo build -p tern --bin tern`).

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const repo = resolve(import.meta.dirname, "../../..");
let binary: string | undefined;

export function ternBinary(): string {
  if (binary) return binary;
  if (process.env.TERN_BIN) return (binary = process.env.TERN_BIN);
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, "target");
  const bin = join(target, "debug/tern");
  execFileSync("cargo", ["build", "-p", "tern", "--bin", "tern"], { cwd: repo, stdio: "inherit" });
  if (!existsSync(bin)) throw new Error(`no tern binary at ${bin}`);
  return (binary = bin);
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("TERN_")) env[k] = v;
  return { ...env, TERN_LOG: "warn", ...extra };
}

export interface App {
  appKey: string;
  appSecret: string;
  webhookSecret: string;
}

export class TernServer {
  readonly dir: string;
  base = "";
  private child: ChildProcess | undefined;
  private addr = "127.0.0.1:0";

  private constructor(private readonly env: Record<string, string>) {
    this.dir = mkdtempSync(join(tmpdir(), "tern-ts-"));
  }

  static async start(env: Record<string, string> = {}): Promise<TernServer> {
    const s = new TernServer(env);
    await s.spawn();
    return s;
  }

  get wsUrl(): string {
    return this.base.replace(/^http/, "ws") + "/v1/connect";
  }

  private envFor(): NodeJS.ProcessEnv {
    return cleanEnv({ TERN_DATA_DIR: join(this.dir, "data"), ...this.env });
  }

  private async spawn(): Promise<void> {
    const child = spawn(ternBinary(), ["serve"], {
      cwd: this.dir,
      env: { ...this.envFor(), TERN_HTTP_ADDR: this.addr, TERN_GRPC_ADDR: "127.0.0.1:0" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.child = child;
    const lines = createInterface({ input: child.stdout! });
    this.base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("tern serve printed no address in 30 s")), 30_000);
      child.once("exit", (code) => reject(new Error(`tern serve exited with ${code}`)));
      lines.on("line", (line) => {
        const m = /^\s+http:\s*(\S+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!.startsWith("http") ? m[1]! : `http://${m[1]}`);
        }
      });
    });
    lines.on("line", () => undefined); // keep draining stdout
    this.addr = new URL(this.base).host;
    // The address is printed before the API is mounted: wait for /readyz.
    for (let i = 0; ; i++) {
      const ok = await fetch(`${this.base}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 300) throw new Error("tern serve not ready in 30 s");
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Runs a CLI command on the same data directory; returns its `--json` answer. */
  cli(args: string[]): Record<string, unknown> {
    const out = execFileSync(ternBinary(), [...args, "--json"], { cwd: this.dir, env: this.envFor() });
    return JSON.parse(out.toString("utf8"));
  }

  /** A tenant and an app; the app's credentials. */
  createApp(name = "chat"): App {
    const tenant = `t-${Math.random().toString(36).slice(2, 10)}`;
    this.cli(["tenant", "create", tenant]);
    const app = this.cli(["app", "create", "--tenant", tenant, "--name", name]);
    return {
      appKey: String(app.app_key),
      appSecret: String(app.app_secret),
      webhookSecret: String(app.webhook_secret),
    };
  }

  /** Kills the server at once (SIGKILL): no goodbye to anyone. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  }

  /** Starts it again on the same address and data directory. */
  async restart(): Promise<void> {
    await this.kill();
    for (let i = 0; ; i++) {
      try {
        await this.spawn();
        return;
      } catch (e) {
        if (i >= 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
