// The console's tour in a real headless Chromium (playwright-core driving the system's
// /usr/bin/chromium): sign in as the operator, create a tenant and an app, see the secret
// once, rotate it, send a message through the signed REST API and find it in the messages
// explorer, point the webhook at a local endpoint that fails and then recovers and send
// test events (the delivery log shows both answers), send a test push from the push log page,
// see the overview of the app and of the platform, add an alert rule and see its alert
// raised on the overview by failing API calls, start a broadcast and watch it finish,
// look up a group and the rooms, recall a message; then the same pages at phone width. Every step asserts what a user would see,
// the page must raise no error (a CSP violation is one), and a screenshot of each page is
// saved in docs/console/.
//
// Usage: node tests/browser/tour.mjs BASE_URL OPERATOR_EMAIL OPERATOR_PASSWORD
import { createHash, createHmac, generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const [base, email, password] = process.argv.slice(2);
if (!base || !email || !password) {
  console.error("usage: tour.mjs BASE_URL OPERATOR_EMAIL OPERATOR_PASSWORD");
  process.exit(2);
}
// Screenshots go to docs/console/ only when asked (UPDATE_SCREENSHOTS=1), so that a test run
// leaves the tree as it found it; otherwise to a temporary directory.
const shots = process.env.UPDATE_SCREENSHOTS === "1"
  ? join(dirname(fileURLToPath(import.meta.url)), "../../../docs/console")
  : mkdtempSync(join(tmpdir(), "tern-console-shots-"));
mkdirSync(shots, { recursive: true });
let passed = 0;
let failed = 0;

function check(what, ok, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok - ${what}`);
  } else {
    failed++;
    console.log(`not ok - ${what} ${detail}`);
  }
}

// SIGNING.md §1: the server API's request signature.
async function signed(appKey, secret, method, path, body) {
  const raw = body === undefined ? "" : JSON.stringify(body);
  const ts = Math.floor(Date.now() / 1000).toString();
  const nonce = randomBytes(16).toString("hex");
  const hash = createHash("sha256").update(raw).digest("hex");
  const toSign = ["TERN1-HMAC-SHA256", ts, nonce, method, path, "", hash].join("\n");
  const sig = createHmac("sha256", secret).update(toSign).digest("hex");
  const res = await fetch(base + path, {
    method,
    headers: {
      "content-type": "application/json",
      "x-tern-app-key": appKey,
      "x-tern-timestamp": ts,
      "x-tern-nonce": nonce,
      "x-tern-signature": `v1=${sig}`,
    },
    body: raw || undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function noSideScroll(page, what) {
  const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(`${what}: no sideways scrolling (${scroll} <= ${width})`, scroll <= width + 1);
}

// Saves the page's screenshot; every page shot must fit its width.
// A boosted link swaps the new page into <body> first and binds its htmx attributes during
// the settle step (20 ms later), so the heading can be visible while the search box is not
// yet listening. htmx drops the `htmx-settling` class only after binding: wait for that.
async function settled(page) {
  await page.waitForFunction(
    () => !document.querySelector(".htmx-request, .htmx-swapping, .htmx-settling"),
    null,
    { timeout: 10000 },
  );
}

async function shot(page, name) {
  await noSideScroll(page, `${name} page`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});
const errors = [];
function watch(page) {
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
}

try {
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desktop.newPage();
  watch(page);

  // Sign in.
  await page.goto(`${base}/console`);
  check("an anonymous visitor is sent to sign in", page.url().endsWith("/console/login"), page.url());
  await shot(page, "login");
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL("**/console/tenants"), page.click("button[type=submit]")]);
  check("the operator lands on the tenants list", (await page.textContent("h1")) === "Tenants");

  // A tenant.
  const tenantName = `Acme Robotics ${Date.now() % 100000}`;
  await page.fill("input[name=name]", tenantName);
  await Promise.all([page.waitForURL(/\/console\/t\/tn_/), page.click("text=Create tenant")]);
  await page.locator("h1", { hasText: tenantName }).waitFor();
  check("the new tenant's page opens", true);
  check("it says the tenant was created", (await page.textContent(".notice")).includes("Tenant created"));

  // An app: its secrets are shown once.
  await page.fill("input[name=name]", "chat");
  await page.click("text=Create app");
  await page.locator("h1", { hasText: "App chat created" }).waitFor();
  const secrets = await page.locator("input.secret").evaluateAll((els) => els.map((e) => e.value));
  const appKey = (await page.locator("dd code").first().textContent()).trim();
  check("the AppSecret and webhook secret are shown", secrets.length === 2 && secrets[0].startsWith("sk_"));
  await shot(page, "app-created");
  await page.click("text=I have copied it");
  await page.locator("h2", { hasText: "Settings" }).waitFor();
  const appUrl = page.url();
  const appHtml = await page.content();
  check("the app page shows the AppKey", appHtml.includes(appKey));
  check("the app page never shows the secret again", !appHtml.includes(secrets[0]));
  await shot(page, "app");

  // A setting out of range: the page says which and why (htmx swaps error answers too).
  await page.fill("input[name=max_text_bytes]", "999999");
  await page.click("text=Save settings");
  await page.locator(".error", { hasText: "max_text_bytes must be from 1 to 65536" }).waitFor();
  check("an out-of-range setting is refused with its range", true);
  // Chromium logs the deliberate 400 as a failed load; nothing else may have been logged.
  check("only the refused save was logged", errors.every((e) => e.includes("status of 400")), JSON.stringify(errors));
  errors.length = 0;
  await page.goto(appUrl);

  // Rotate: a new secret, once.
  await page.click("text=Rotate AppSecret");
  await page.locator("h1", { hasText: "New AppSecret" }).waitFor();
  const rotated = await page.locator("input.secret").inputValue();
  check("rotation shows a new secret", rotated.startsWith("sk_") && rotated !== secrets[0]);
  await shot(page, "secret-rotated");
  await page.goto(appUrl);
  check("two secrets work during the grace period", (await page.locator("#secrets tbody tr").count()) === 2);

  // A message through the REST API, signed with the new secret.
  await signed(appKey, rotated, "POST", "/v1/users", {
    users: [
      { id: "alice", name: "Alice" },
      { id: "bob", name: "Bob" },
    ],
  });
  const sent = await signed(appKey, rotated, "POST", "/v1/messages", {
    from: "alice",
    to: { user: "bob" },
    client_msg_id: "tour-1",
    type: "text",
    content: { text: "Hello from the REST API" },
  });
  check("the REST API accepted the message", sent.seq === 1, JSON.stringify(sent));

  // Users explorer: the search updates as you type (htmx).
  await page.click("nav.tabs >> text=Users");
  await page.locator("h1", { hasText: "Users of chat" }).waitFor();
  // htmx binds the search box once the page has settled; typing before that is lost.
  await page.waitForLoadState("load");
  await settled(page);
  await page.fill("input[name=q]", "ali");
  await page.waitForURL(/q=ali/);
  const narrowed = await page
    .waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 1, null, { timeout: 10000 })
    .then(() => true, () => false);
  check("searching 'ali' narrows the list to Alice as you type", narrowed);
  await shot(page, "users");
  await page.click("#results >> text=alice");
  await page.locator("h2", { hasText: "Conversations" }).waitFor();
  await shot(page, "user");

  // Messages explorer, from Alice's conversation.
  await page.click(`text=${sent.conversation_id}`);
  await page.locator("li.message").first().waitFor();
  const body = await page.locator("li.message .body").first().textContent();
  check("the REST message shows in the explorer", body === "Hello from the REST API", body);
  await shot(page, "messages");
  await page.goBack();
  await page.locator("h2", { hasText: "Conversations" }).waitFor();
  check("the back button returns to the user", page.url().endsWith("/users/alice"));

  // Webhooks: an endpoint of our own (console/ci.sh allows private addresses) that fails
  // with a 500, then recovers. Each test event's answer shows at the top and in the log.
  let hookStatus = 500;
  const hook = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(hookStatus, { "content-type": "text/plain" });
      res.end(hookStatus === 200 ? "ok" : "<b>receiver down</b>");
    });
  });
  await new Promise((resolve) => hook.listen(0, "127.0.0.1", resolve));
  try {
    await page.goto(`${appUrl}/webhooks`);
    await page.locator("h2", { hasText: "Delivery log" }).waitFor();
    check("the delivery log starts empty", (await page.locator("#log .empty").count()) === 1);
    check("the breaker is closed", (await page.textContent("#breaker .breaker-state")) === "closed");
    await page.fill("input[name=url]", `http://127.0.0.1:${hook.address().port}/hook`);
    await page.check("input[name='event.message.sent']");
    await page.click("text=Save webhook");
    await page.locator(".notice", { hasText: "Webhook settings saved" }).waitFor();
    await settled(page);
    await page.click("text=Send test event");
    await page.locator(".test-result .outcome").waitFor();
    const failedTest = await page.textContent(".test-result");
    check("a failing endpoint's answer shows: failed, HTTP 500, its body as text",
      failedTest.includes("failed") && failedTest.includes("500") && failedTest.includes("<b>receiver down</b>"), failedTest);
    hookStatus = 200;
    await settled(page);
    await page.click("text=Send test event");
    await page.locator(".test-result .outcome", { hasText: "delivered" }).waitFor();
    check("the recovered endpoint's answer shows: delivered, HTTP 200",
      (await page.textContent(".test-result .http-status")) === "200");
    check("both attempts are in the delivery log", (await page.locator("#log tbody tr").count()) === 2);
    await shot(page, "webhooks");
  } finally {
    hook.close();
  }

  // Push: bob's phone gets a test push before and after the app has APNs credentials. No
  // APNs here: console/ci.sh points the APNs URLs at a closed local port, so the answer is
  // that the provider was not reached — which the page must say, not hide.
  await signed(appKey, rotated, "POST", "/v1/users/bob/devices", {
    provider: "apns",
    token: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
    environment: "sandbox",
  });
  await page.click("nav.tabs >> text=Push");
  await page.locator("h1", { hasText: "Push log of chat" }).waitFor();
  check("the push log starts empty", (await page.locator("#log .empty").count()) === 1);
  await page.fill("input[name=user]", "bob");
  await page.click("text=Filter");
  await page.locator("h2", { hasText: "Devices of" }).waitFor();
  check("bob's phone is listed with its button", (await page.locator("#devices tbody tr").count()) === 1);
  await page.click("text=Send test push");
  await page.locator(".test-result").waitFor();
  const notSent = await page.textContent(".test-result");
  check("a test push without credentials says why nothing was sent", notSent.includes("no apns credentials"), notSent);
  const p8 = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ type: "pkcs8", format: "pem" });
  await signed(appKey, rotated, "PUT", "/v1/push/credentials/apns", {
    key_id: "ABC123DEFG",
    team_id: "TEAM123456",
    bundle_id: "com.example.chat",
    private_key: String(p8),
  });
  await settled(page);
  await page.click("text=Send test push");
  await page.locator(".test-result .outcome").waitFor();
  const answer = await page.textContent(".test-result");
  check("the provider's answer shows: failed, not reached", answer.includes("failed") && answer.includes("apns was not reached") && answer.includes("network"), answer);
  check("the attempt is in the log", (await page.locator("#log tbody tr").count()) === 1);
  await shot(page, "push");

  // Usage: the message sent above becomes a point on the chart once its node writes its
  // counters (every 5 s); uPlot draws it into a canvas, with no inline script.
  await page.click("nav.tabs >> text=Usage");
  await page.locator("h1", { hasText: "Usage of chat" }).waitFor();
  let counted = false;
  for (let i = 0; i < 40 && !counted; i++) {
    counted = (await page.content()).includes("<strong>1</strong> messages");
    if (!counted) {
      await page.waitForTimeout(500);
      await page.reload();
    }
  }
  check("the usage chart gains the message sent through the REST API", counted);
  const drawn = await page
    .locator("#usage-chart canvas")
    .first()
    .waitFor({ timeout: 10000 })
    .then(() => true, () => false);
  check("uPlot draws the usage chart", drawn);
  await shot(page, "usage");

  // The overview: the same counters over the last hour, day and 30 days, and a chart.
  await page.click("nav.tabs >> text=Overview");
  await page.locator("h1", { hasText: "Overview of chat" }).waitFor();
  const day = await page.textContent("#windows tbody tr:nth-child(2)");
  check("the overview counts the message in the last 24 hours", day.includes("Last 24 hours") && day.includes("1"), day);
  const charted = await page
    .locator("#overview-chart canvas")
    .first()
    .waitFor({ timeout: 10000 })
    .then(() => true, () => false);
  check("uPlot draws the overview chart", charted);
  await shot(page, "overview");
  await page.click("nav.main >> text=Overview");
  await page.locator("h1", { hasText: "Platform overview" }).waitFor();
  await shot(page, "platform-overview");
  await page.goto(`${appUrl}/usage`);
  await page.locator("h1", { hasText: "Usage of chat" }).waitFor();

  // Alerts: a rule on the API error rate, then signed calls that fail (404): the evaluator
  // (every second in this run) raises an alert, which the app's overview shows at the top.
  await page.click("nav.tabs >> text=Alerts");
  await page.locator("h1", { hasText: "Alerts of chat" }).waitFor();
  check("no alert rules yet", (await page.textContent("#rules")).includes("No alert rules yet"));
  await page.selectOption("#new-rule select[name=kind]", "error_rate");
  await page.fill("#new-rule input[name=threshold]", "5");
  await page.fill("#new-rule input[name=window_minutes]", "5");
  await page.fill("#new-rule input[name=min_volume]", "5");
  await settled(page);
  await page.click("text=Add rule");
  await page.locator(".notice", { hasText: "Alert rule added" }).waitFor();
  check("the rule is listed with its condition", (await page.textContent("#rules")).includes("more than 5 % of API calls answer an error over 5 min"));
  for (let i = 0; i < 20; i++) {
    await signed(appKey, rotated, "GET", `/v1/users/ghost-${i}`).then(
      () => check("a call for a user that does not exist fails", false),
      () => {},
    );
  }
  await page.click("nav.tabs >> text=Overview");
  await page.locator("h1", { hasText: "Overview of chat" }).waitFor();
  let raised = false;
  for (let i = 0; i < 60 && !raised; i++) {
    raised = (await page.locator("#open-alerts").count()) === 1;
    if (!raised) {
      await page.waitForTimeout(500);
      await page.reload();
    }
  }
  check("the overview shows the raised alert", raised);
  if (raised) {
    const open = await page.textContent("#open-alerts");
    check("the alert says what was seen", open.includes("API error rate") && open.includes("API calls answered an error"), open);
  }
  const errorsShown = await page.textContent("#windows tbody tr:nth-child(1) .api-errors");
  check("the overview counts the failed calls as errors", errorsShown.includes("20"), errorsShown);
  await shot(page, "overview-alert");
  await page.click("#open-alerts >> text=Alerts of chat");
  await page.locator("h1", { hasText: "Alerts of chat" }).waitFor();
  check("the alerts page lists the alert as open", (await page.textContent("#alerts")).includes("open"));
  await shot(page, "alerts");

  // Broadcasts (after the usage check: their notifications are messages too): one to Alice
  // and a user that does not exist; the progress refreshes itself until the job is done.
  await page.click("nav.tabs >> text=Broadcasts");
  await page.locator("h1", { hasText: "Broadcasts of chat" }).waitFor();
  check("no broadcasts yet", (await page.locator("#broadcasts .empty").count()) === 1);
  await page.fill("textarea[name=text]", "Maintenance tonight at 02:00 UTC");
  await page.check("input[name=audience][value=list]");
  await page.fill("textarea[name=users]", "alice nobody");
  page.once("dialog", (d) => d.accept());
  await settled(page);
  await page.click("text=Start broadcast");
  await page.locator(".notice", { hasText: "Broadcast started" }).waitFor();
  const finished = await page
    .locator("#broadcasts .state", { hasText: "done" })
    .waitFor({ timeout: 30000 })
    .then(() => true, () => false);
  check("the broadcast's progress updates by itself until it is done", finished);
  const progress = await page.textContent("#broadcasts tbody tr");
  check("it reached Alice and counted the unknown user as failed",
    progress.includes("2 of 2 users") && progress.includes("1 sent") && progress.includes("1 failed"), progress);
  await shot(page, "broadcasts");

  // Groups and rooms: a group with an admin, and a room.
  await signed(appKey, rotated, "POST", "/v1/groups", {
    id: "robots", name: "Robot builders", owner: "alice", members: ["bob"], announcement: "Demo day on Friday",
  });
  await signed(appKey, rotated, "POST", "/v1/groups/robots/members/bob/role", { role: "admin" });
  await signed(appKey, rotated, "POST", "/v1/rooms", { id: "launch", name: "Launch party" });
  await page.click("nav.tabs >> text=Groups and rooms");
  await page.locator("h1", { hasText: "Groups of chat" }).waitFor();
  await page.fill("input[name=group]", "robots");
  await page.click("text=Show group");
  await page.locator("#members tbody tr").first().waitFor();
  const roles = await page.locator("#members .role").allTextContents();
  check("the group's members show with their roles", roles.join(",") === "owner,admin", roles.join(","));
  await shot(page, "groups");
  await page.click("#group-search >> text=Rooms");
  await page.locator("h1", { hasText: "Rooms of chat" }).waitFor();
  check("the room is listed with its live count", (await page.textContent("#rooms tbody tr")).includes("Launch party"));
  await shot(page, "rooms");

  // Recall from the messages explorer.
  await page.goto(`${appUrl}/messages?conversation=${sent.conversation_id}`);
  await page.locator("li.message").first().waitFor();
  page.once("dialog", (d) => d.accept());
  await settled(page);
  await page.click("li.message >> text=Recall");
  await page.locator("li.message.recalled").first().waitFor();
  check("a recalled message is marked and keeps no button", (await page.locator("li.message form[action$='/recall']").count()) === 0);
  await page.click("text=Audit log");
  await page.locator("h1", { hasText: "Audit log" }).waitFor();
  const log = await page.content();
  for (const action of ["tenant.create", "app.create", "app.secret.rotate", "app.webhook", "app.webhook.test", "app.broadcast.start", "app.message.recall", "app.alert_rule.create"]) {
    check(`the audit log shows ${action}`, log.includes(action));
  }
  check("the audit log holds no secret", !log.includes(rotated) && !log.includes(secrets[0]));
  await shot(page, "audit");
  await page.goto(`${base}/console/tenants`);
  await shot(page, "tenants");
  await page.goto(`${base}/console/mail`);
  await shot(page, "mail");

  // Phone width.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  watch(small);
  await small.goto(`${base}/console/login`);
  await small.fill("input[name=email]", email);
  await small.fill("input[name=password]", password);
  await Promise.all([small.waitForURL("**/console/tenants"), small.click("button[type=submit]")]);
  for (const [path, name] of [
    [appUrl.replace(base, ""), "app-phone"],
    [`${appUrl.replace(base, "")}/messages?conversation=${sent.conversation_id}`, "messages-phone"],
    [`${appUrl.replace(base, "")}/users`, null],
    [`${appUrl.replace(base, "")}/push?user=bob`, null],
    [`${appUrl.replace(base, "")}/webhooks`, null],
    [`${appUrl.replace(base, "")}/broadcasts`, null],
    [`${appUrl.replace(base, "")}/groups?group=robots`, null],
    [`${appUrl.replace(base, "")}/rooms`, null],
    [`${appUrl.replace(base, "")}/overview`, null],
    [`${appUrl.replace(base, "")}/usage`, "usage-phone"],
    [`${appUrl.replace(base, "")}/alerts`, null],
  ]) {
    await small.goto(base + path);
    if (name) await shot(small, name);
    else await noSideScroll(small, `${path} at 390 px`);
  }
  check("no page raised an error (a CSP violation would be one)", errors.length === 0, JSON.stringify(errors));
} catch (e) {
  failed++;
  console.log(`not ok - the tour stopped: ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
