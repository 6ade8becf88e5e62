// Browser tests of the dashboard (issue 4): a real `tessera serve` and Debian's headless
// Chromium, driven by playwright-core. A person signs in, creates an application, gets
// a token and checks it at the public introspection endpoint, revokes it, rotates the
// secret and deletes the application; once with JavaScript and once without. Every page
// is saved as a screenshot under $SCREENSHOT_DIR (default target/dashboard-screenshots).
//
// Environment: TESSERA_BIN (the binary to run), CHROMIUM (default /usr/bin/chromium).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes, generateKeyPairSync } from "node:crypto";
import { chromium } from "playwright-core";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = process.env.TESSERA_BIN ?? join(ROOT, "target/debug/tessera");
const SHOTS = process.env.SCREENSHOT_DIR ?? join(ROOT, "target/dashboard-screenshots");
const ADMIN_KEY = randomBytes(32).toString("base64url");

let server;
let work;
let browser;
let publicUrl;
let adminUrl;

function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.on("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

async function waitUntilUp(url, deadlineMs) {
  while (Date.now() < deadlineMs) {
    if (server.exitCode !== null) throw new Error(`tessera exited (${server.exitCode})`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer in time`);
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "tessera-dashboard-"));
  mkdirSync(SHOTS, { recursive: true });
  const [publicPort, adminPort] = [await freePort(), await freePort()];
  publicUrl = `http://127.0.0.1:${publicPort}`;
  adminUrl = `http://127.0.0.1:${adminPort}`;
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith("TESSERA_")),
  );
  Object.assign(env, {
    TESSERA_LISTEN: `127.0.0.1:${publicPort}`,
    TESSERA_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    TESSERA_DATA_DIR: join(work, "data"),
    TESSERA_MASTER_KEY: randomBytes(32).toString("hex"),
    TESSERA_ADMIN_KEY: ADMIN_KEY,
    TESSERA_LOG: "error",
  });
  server = spawn(BIN, ["serve"], { env, stdio: ["ignore", "ignore", "inherit"] });
  const deadline = Date.now() + 30_000;
  await waitUntilUp(`${publicUrl}/healthz`, deadline);
  await waitUntilUp(`${adminUrl}/assets/dashboard.css`, deadline);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (work) rmSync(work, { recursive: true, force: true });
});

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page, name) {
  await page.goto(`${adminUrl}/`);
  await page.waitForURL(/\/sign-in/);
  await page.fill("#admin_key", ADMIN_KEY);
  await page.click("button[type=submit]");
  await page.waitForURL(`${adminUrl}/`);
  if (name) await shot(page, name);
}

function basic(id, secret) {
  const enc = (s) => encodeURIComponent(s);
  return "Basic " + Buffer.from(`${enc(id)}:${enc(secret)}`).toString("base64");
}

async function tokenFor(id, secret) {
  return fetch(`${publicUrl}/oauth2/token`, {
    method: "POST",
    headers: {
      authorization: basic(id, secret),
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  });
}

async function introspect(id, secret, token) {
  const reply = await fetch(`${publicUrl}/oauth2/introspect`, {
    method: "POST",
    headers: {
      authorization: basic(id, secret),
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ token }).toString(),
  });
  assert.equal(reply.status, 200);
  return reply.json();
}

test("a person signs in, creates an application, gets, checks and revokes a token, and deletes it", async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: adminUrl });
  const page = await context.newPage();
  const dialogs = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    dialog.accept();
  });

  // Signing in: a wrong key is refused beside the field, the right one opens the realms.
  await page.goto(`${adminUrl}/`);
  await page.waitForURL(/\/sign-in\?next=/);
  await shot(page, "01-sign-in");
  await page.fill("#admin_key", "not the key");
  await page.click("button[type=submit]");
  assert.match(await page.locator("#admin_key-error").textContent(), /not the admin key/);
  await shot(page, "02-sign-in-refused");
  await page.fill("#admin_key", ADMIN_KEY);
  await page.click("button[type=submit]");
  await page.waitForURL(`${adminUrl}/`);
  await page.locator("h1", { hasText: "Realms" }).waitFor();
  await shot(page, "03-realms");

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "tessera_session");
  assert.ok(session, "a session cookie is set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  assert.equal(session.secure, false, "plain HTTP: not Secure");

  // The default realm's applications, then the form for a new one.
  await page.click('main a[href="/realms/default"]');
  await page.waitForURL(`${adminUrl}/realms/default`);
  await page.locator("text=No applications yet.").waitFor();
  await shot(page, "04-applications-empty");
  await page.click("text=New application");
  await page.waitForURL(/\/realms\/default\/new$/);
  await shot(page, "05-new-application");

  // A bad public key is named beside its field; what was typed stays.
  await page.fill("#new-name", "Billing service");
  await page.fill("#new-scopes", "read write");
  await page.check('input[name="token_ttl"][value="36000"]');
  await page.fill("#new-public_key", "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----");
  await page.click("text=Create application");
  await page.locator("#new-public_key-error").waitFor();
  assert.equal(await page.inputValue("#new-name"), "Billing service");
  assert.equal(await page.isChecked('input[name="token_ttl"][value="36000"]'), true);
  await shot(page, "06-new-application-error");

  // A real RSA key is accepted; the secret is shown once with a copy button.
  const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  await page.fill("#new-public_key", publicKey.export({ type: "spki", format: "pem" }));
  await page.click("text=Create application");
  await page.locator("h1", { hasText: "Application created" }).waitFor();
  const clientId = await page.inputValue("#client_id");
  const secret = await page.inputValue("#client_secret");
  assert.ok(clientId.length > 10 && secret.length >= 43);
  await page.click('button[data-copy="client_secret"]');
  await page.locator('button[data-copy="client_secret"].done').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shot(page, "07-application-created");

  // Tokens the application gets itself show in the chart of the application page.
  for (let i = 0; i < 3; i++) assert.equal((await tokenFor(clientId, secret)).status, 200);
  await page.click("text=Go to the application");
  await page.waitForURL(`${adminUrl}/realms/default/apps/${clientId}`);
  const caption = await page.locator(".chart figcaption").textContent();
  assert.match(caption, /^3 tokens in the last 24 hours/);
  assert.equal(await page.isChecked('#edit-token_ttl, input[name="token_ttl"][value="36000"]'), true);
  await shot(page, "08-application");

  // Generate a token that lives 15 minutes and check it at the public endpoint.
  await page.check('input[name="ttl"][value="900"]');
  await page.click("text=Generate token");
  await page.locator("h1", { hasText: "A token for Billing service" }).waitFor();
  const token = await page.inputValue("#access_token");
  await shot(page, "09-token");
  const active = await introspect(clientId, secret, token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, clientId);
  const lifetime = active.exp - Math.floor(Date.now() / 1000);
  assert.ok(lifetime > 800 && lifetime <= 901, `lifetime ${lifetime}`);

  // Revoke every token: confirmed in a dialog, then introspection says inactive.
  await page.click("text=Back to the application");
  await page.click("text=Revoke all tokens");
  await page.locator(".flash", { hasText: "revoked" }).waitFor();
  assert.match(dialogs.at(-1), /Revoke every token/);
  await shot(page, "10-revoked");
  assert.equal((await introspect(clientId, secret, token)).active, false);

  // A lifetime typed out chooses "Other"; a bad one is named beside the field.
  await page.fill("#token-ttl", "soon");
  assert.equal(await page.isChecked('input[name="ttl"][value="other"]'), true);
  await page.click("text=Generate token");
  await page.locator("#token-ttl-error").waitFor();
  await shot(page, "11-token-error");

  // Settings: rename; the list finds it by search.
  await page.fill("#edit-name", "Billing v2");
  await page.click("text=Save settings");
  await page.locator(".flash", { hasText: "Settings saved" }).waitFor();
  await page.goto(`${adminUrl}/realms/default?q=v2`);
  await page.locator(`td.mono:text("${clientId}")`).waitFor();
  await shot(page, "12-search");
  await page.goto(`${adminUrl}/realms/default?q=nothing-like-it`);
  await page.locator("text=No application matches.").waitFor();

  // Rotate the secret at once: the old one stops, the new one works.
  await page.goto(`${adminUrl}/realms/default/apps/${clientId}`);
  await page.click("text=Rotate secret");
  await page.locator("h1", { hasText: "A new secret" }).waitFor();
  const newSecret = await page.inputValue("#client_secret");
  await shot(page, "13-secret-rotated");
  assert.equal((await tokenFor(clientId, secret)).status, 401);
  assert.equal((await tokenFor(clientId, newSecret)).status, 200);

  // Delete, confirmed in a dialog: gone from the list, its secret refused.
  await page.click("text=Back to the application");
  await page.click("text=Delete application…");
  await page.waitForURL(/\/realms\/default\?done=deleted/);
  await page.locator(".flash", { hasText: "Application deleted" }).waitFor();
  assert.match(dialogs.at(-1), /Delete Billing v2\?/);
  await shot(page, "14-deleted");
  assert.equal(await page.locator(`text=${clientId}`).count(), 0);
  assert.equal((await tokenFor(clientId, newSecret)).status, 401);

  // The audit log names the dashboard session, never the secret.
  const audit = await (
    await fetch(`${adminUrl}/admin/v1/audit?client_id=${clientId}`, {
      headers: { authorization: `Bearer ${ADMIN_KEY}` },
    })
  ).json();
  const actions = audit.map((entry) => entry.action).sort();
  assert.deepEqual(actions, [
    "application.create",
    "application.delete",
    "application.issue_token",
    "application.revoke_tokens",
    "application.rotate_secret",
    "application.update",
  ]);
  for (const entry of audit) assert.match(entry.actor, /^dashboard:/);
  const text = JSON.stringify(audit);
  for (const value of [secret, newSecret, token]) assert.ok(!text.includes(value));

  // Signing out ends the session, and a copy of its cookie is refused too.
  const [sessionCookie] = (await context.cookies()).filter((c) => c.name === "tessera_session");
  await page.click('button:text-is("Sign out")');
  await page.waitForURL(/\/sign-in/);
  await page.goto(`${adminUrl}/realms/default`);
  await page.waitForURL(/\/sign-in\?next=%2Frealms%2Fdefault/);
  await context.addCookies([sessionCookie]);
  await page.goto(`${adminUrl}/realms/default`);
  await page.waitForURL(/\/sign-in\?next=%2Frealms%2Fdefault/);

  // "Sign out everywhere" ends another browser's session as well.
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await signIn(otherPage);
  await signIn(page);
  await page.click('button:text-is("Sign out everywhere")');
  await page.waitForURL(/\/sign-in/);
  await otherPage.goto(`${adminUrl}/realms/default`);
  await otherPage.waitForURL(/\/sign-in\?next=%2Frealms%2Fdefault/);
  await other.close();
  await context.close();
});

test("everything works without JavaScript, with a confirmation page for deleting", async () => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page);

  await page.goto(`${adminUrl}/realms/default/new`);
  await page.fill("#new-name", "No script");
  await page.check('input[name="token_ttl"][value="other"]');
  await page.fill("#new-token_ttl", "45m");
  await page.click("text=Create application");
  await page.locator("h1", { hasText: "Application created" }).waitFor();
  const clientId = await page.inputValue("#client_id");

  await page.goto(`${adminUrl}/realms/default/apps/${clientId}`);
  assert.equal(await page.inputValue("#edit-token_ttl"), "45m");
  await page.click("text=Delete application…");
  await page.locator("h1", { hasText: "Delete No script?" }).waitFor();
  await shot(page, "15-confirm-delete-without-javascript");
  await page.click("main button[type=submit]");
  await page.locator(".flash", { hasText: "Application deleted" }).waitFor();

  // A new realm, from the realms page.
  await page.goto(`${adminUrl}/`);
  await page.fill("#realm-name", "Not A Name!");
  await page.click("text=Create realm");
  await page.locator("#realm-name-error").waitFor();
  await page.fill("#realm-name", "partners");
  await page.click("text=Create realm");
  await page.waitForURL(`${adminUrl}/realms/partners?done=realm`);
  await shot(page, "16-new-realm");
  await context.close();
});

test("a form from another site, or without its token, changes nothing", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page);
  const reply = await page.request.post(`${adminUrl}/realms`, {
    form: { name: "forged", csrf: "guess" },
    maxRedirects: 0,
  });
  assert.equal(reply.status(), 403);
  assert.match(await reply.text(), /This form has expired/);
  await page.setContent(await reply.text());
  await shot(page, "17-forged-form-refused");
  const realms = await (
    await fetch(`${adminUrl}/admin/v1/realms`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  ).json();
  assert.ok(!realms.some((r) => r.name === "forged"));

  // Behind a TLS proxy the cookies are Secure.
  const signInPage = await fetch(`${adminUrl}/sign-in`, { headers: { "x-forwarded-proto": "https" } });
  assert.match(signInPage.headers.get("set-cookie"), /; Secure/);
  writeFileSync(join(SHOTS, "README.txt"), "Screenshots of the dashboard, one per page, from tests/dashboard.\n");
  await context.close();
});
