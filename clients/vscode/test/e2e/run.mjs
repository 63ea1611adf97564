// End to end in real VS Code: code-server + headless Chromium on the fixture workspace.
//
//   node test/e2e/run.mjs [--screenshots DIR] [--keep]     (DIR gets quickpick.png and findsimilar.png)
//
// Environment: CODE_SERVER (the code-server launcher; needs Node 24 first on PATH), SEMCODE_SERVER
// (the semcode executable), CHROMIUM (default /usr/bin/chromium), VSIX (default ./semcode.vsix),
// E2E_VSIX (default test/e2e/extension/semcode-e2e.vsix: the test extension, see scripts/ci.sh).
//
// The extension is installed from the .vsix, next to the test extension (test/e2e/extension), which is
// never shipped: once semcode is active it runs semcode's commands through the API semcode's `activate`
// returns and writes a JSON report to $SEMCODE_VSCODE_E2E, which this script checks.
// Then this script drives the UI like a user: F1 → "semcode: Search Workspace Semantically" →
// types a query, checks the results, takes a screenshot, and opens the first result with Enter.
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { chromium } from "playwright-core";
import { copyFixture, EXT_DIR, serverCommand } from "../helpers.mjs";

const args = process.argv.slice(2);
const argValue = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const KEEP = args.includes("--keep");
const CODE_SERVER = process.env.CODE_SERVER || "code-server";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const VSIX = path.resolve(process.env.VSIX || path.join(EXT_DIR, "semcode.vsix"));
const E2E_VSIX = path.resolve(process.env.E2E_VSIX || path.join(EXT_DIR, "test", "e2e", "extension", "semcode-e2e.vsix"));
const REPORT_TIMEOUT_MS = Number(process.env.SEMCODE_E2E_TIMEOUT_MS ?? 300_000);

const checks = [];
function record(name, ok, detail = "") {
  checks.push({ name, ok, detail });
  console.log(`${ok ? "ok" : "not ok"} - ${name}${detail ? ` # ${detail}` : ""}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitForHttp(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await sleep(250);
  }
}

async function waitForFile(file, timeoutMs, alive) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fs.existsSync(file)) {
      try {
        const data = JSON.parse(fs.readFileSync(file, "utf8"));
        if (data.done) return data;
      } catch {
        // being written
      }
    }
    if (!alive()) throw new Error("code-server exited");
    if (Date.now() > deadline) throw new Error(`no report in ${file} within ${timeoutMs} ms`);
    await sleep(500);
  }
}

const { root, workspace } = copyFixture("semcode-e2e-");
const dirs = Object.fromEntries(
  ["user-data", "extensions", "xdg-config", "xdg-data", "xdg-cache", "cache"].map((d) => {
    const p = path.join(root, d);
    fs.mkdirSync(p, { recursive: true });
    return [d, p];
  }),
);
const reportFile = path.join(root, "report.json");
const shotDir = path.resolve(argValue("--screenshots") ?? root);
const screenshot = path.join(shotDir, "quickpick.png");
const similarShot = path.join(shotDir, "findsimilar.png");
const server = serverCommand().command;
const env = {
  ...process.env,
  XDG_CONFIG_HOME: dirs["xdg-config"],
  XDG_DATA_HOME: dirs["xdg-data"],
  XDG_CACHE_HOME: dirs["xdg-cache"],
  SEMCODE_CACHE_DIR: dirs.cache,
  SEMCODE_VSCODE_E2E: reportFile,
};

// code-server is a remote setup: machine-scoped settings (semcode.path) are read from the Machine
// settings, and ignored in the User settings, so write both.
const settingsJson = JSON.stringify(
  {
    "semcode.path": server,
    "security.workspace.trust.enabled": true,
    "security.workspace.trust.startupPrompt": "always",
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "chat.disableAIFeatures": true,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoUpdate": false,
    "extensions.autoCheckUpdates": false,
    "extensions.ignoreRecommendations": true,
    "git.enabled": false,
    "window.zoomLevel": 0,
    "workbench.colorTheme": "Default Dark Modern",
  },
  null,
  2,
);
for (const scope of ["User", "Machine"]) {
  fs.mkdirSync(path.join(dirs["user-data"], scope), { recursive: true });
  fs.writeFileSync(path.join(dirs["user-data"], scope, "settings.json"), settingsJson);
}
const configFile = path.join(root, "config.yaml");
fs.writeFileSync(configFile, "auth: none\ncert: false\n");

const common = ["--user-data-dir", dirs["user-data"], "--extensions-dir", dirs.extensions, "--config", configFile];
let codeServer;
let browser;
let exitCode = 1;
try {
  // 1. Install the .vsix the way a user would, then the test extension that runs the in-editor checks.
  for (const [name, vsix] of [["semcode.vsix", VSIX], ["the e2e test extension", E2E_VSIX]]) {
    const install = spawnSync(CODE_SERVER, [...common, "--install-extension", vsix], { env, encoding: "utf8", timeout: 120_000 });
    const installed = install.status === 0 && /successfully installed/i.test(install.stdout + install.stderr);
    record(`code-server --install-extension ${name}`, installed, installed ? "" : (install.stdout + install.stderr + (install.error ?? "")).slice(-800));
    if (!installed) throw new Error(`installing ${vsix} failed`);
  }

  // 2. Start code-server.
  const port = await freePort();
  const log = fs.openSync(path.join(root, "code-server.log"), "w");
  codeServer = spawn(
    CODE_SERVER,
    [...common, "--auth", "none", "--bind-addr", `127.0.0.1:${port}`, "--disable-telemetry", "--disable-update-check",
      "--disable-getting-started-override", workspace],
    { env, stdio: ["ignore", log, log], detached: true },
  );
  const alive = () => codeServer.exitCode === null && codeServer.signalCode === null;
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000);

  // 3. Open it in headless Chromium (the extension host starts when a browser connects).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
  await page.waitForSelector(".monaco-workbench", { timeout: 60_000 });

  // 4. Restricted mode first: the extension reports that it started nothing, then we trust the folder.
  try {
    const trust = page.locator(".monaco-dialog-box .monaco-button", { hasText: /trust the authors/i }).filter({ hasText: /^Yes/ });
    await trust.first().waitFor({ timeout: 60_000 });
    await waitForFile(`${reportFile}.untrusted.json`, 60_000, alive);
    record("restricted mode: the trust dialog is shown", true);
    await page.screenshot({ path: path.join(shotDir, "restricted.png") });
    await trust.first().click();
  } catch (error) {
    record("restricted mode: the trust dialog is shown", false, String(error).slice(0, 300));
  }

  // 5. The in-editor checks (test/e2e/extension) run the extension's commands and write a report. Meanwhile
  //    watch the page for what a user would see: notifications and the peek view.
  const t0 = Date.now();
  const notifications = new Set();
  let peekTitle;
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      try {
        for (const t of await page.locator(".notification-toast").allInnerTexts()) notifications.add(t.replace(/\s+/g, " ").trim());
        const peek = page.locator(".peekview-widget .peekview-title");
        if (peekTitle === undefined && (await peek.count()) > 0) peekTitle = (await peek.first().innerText()).replace(/\s+/g, " ");
      } catch {
        // the page is busy
      }
      await sleep(300);
    }
  })();
  let report;
  try {
    report = await waitForFile(reportFile, REPORT_TIMEOUT_MS, alive);
  } finally {
    watching = false;
    await watcher;
  }
  for (const c of report.checks) record(`[vscode ${report.vscodeVersion}] ${c.name}`, c.ok, `${c.detail} (${c.ms} ms)`);
  console.log(`# in-editor checks took ${Date.now() - t0} ms`);
  const seen = [...notifications];
  console.log(`# notifications seen: ${JSON.stringify(seen).slice(0, 1000)}`);
  record("Find Similar Code shows the peek view", peekTitle !== undefined, peekTitle ?? "no peek view seen");
  record("the failure notification names the setting and offers fixes",
    seen.some((t) => /semcode\.path/.test(t) && /does not exist/.test(t) && /Open Settings/.test(t)), "");
  const serverErrors = seen.filter((t) => /Error in server|Internal Error|Traceback/i.test(t));
  record("no server error notifications", serverErrors.length === 0, serverErrors.join(" | ").slice(0, 300));

  // 6. As a user: the command palette, the QuickPick, a screenshot, Enter.
  try {
    await page.locator(".monaco-workbench").click({ position: { x: 640, y: 400 } });
    await page.keyboard.press("F1");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ state: "visible", timeout: 10_000 });
    await input.fill(">semcode: Search Workspace Semantically");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "Search Workspace Semantically" }).first()
      .waitFor({ timeout: 10_000 });
    await page.keyboard.press("Enter");
    // Wait for semcode's own QuickPick (its placeholder) before typing, or the first keys go to the palette.
    await page.waitForFunction(
      () => document.querySelector(".quick-input-widget input")?.getAttribute("placeholder")?.includes("Describe the code"),
      undefined,
      { timeout: 10_000 },
    );
    await input.pressSequentially("parse the query string of a URL", { delay: 25 });
    const hit = page.locator(".quick-input-list .monaco-list-row", { hasText: "parse_query_string" }).first();
    await hit.waitFor({ timeout: 30_000 });
    await sleep(500);
    const rows = await page.locator(".quick-input-list .monaco-list-row").allInnerTexts();
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot });
    const firstRow = rows[0] ?? "";
    record("QuickPick typed in the palette shows parse_query_string", rows.slice(0, 3).some((r) => r.includes("parse_query_string")),
      `${rows.length} rows; first: ${firstRow.replace(/\s+/g, " ").slice(0, 100)}; screenshot ${screenshot}`);
    await page.keyboard.press("Enter");
    const tab = page.locator(".tabs-container .tab.active", { hasText: "urls.py" });
    await tab.waitFor({ timeout: 15_000 });
    record("Enter opens urls.py", true);
    const statusText = await page.locator(".statusbar-item", { hasText: "chunks" }).first().innerText({ timeout: 10_000 });
    record("status bar shows the index size", /\d+ chunks/.test(statusText), statusText.trim());

    // The opened result is selected: "semcode: Find Similar Code" from the palette → peek view.
    await sleep(500);
    await page.keyboard.press("F1");
    await input.waitFor({ state: "visible", timeout: 10_000 });
    await input.fill(">semcode: Find Similar Code");
    await page.locator(".quick-input-list .monaco-list-row", { hasText: "Find Similar Code" }).first().waitFor({ timeout: 10_000 });
    await page.keyboard.press("Enter");
    const peek = page.locator(".peekview-widget");
    await peek.first().waitFor({ timeout: 20_000 });
    await sleep(800);
    await page.screenshot({ path: similarShot });
    const peekText = (await page.locator(".peekview-widget .peekview-title").first().innerText()).replace(/\s+/g, " ");
    record("Find Similar Code from the palette opens the peek view", /urls\.py/.test(peekText), `${peekText}; screenshot ${similarShot}`);
  } catch (error) {
    record("QuickPick driven from the command palette", false, String(error).slice(0, 500));
    await page.screenshot({ path: path.join(root, "failure.png") }).catch(() => {});
  }
  if (pageErrors.length) console.log(`# page errors: ${pageErrors.slice(0, 3).join(" | ")}`);
  exitCode = checks.every((c) => c.ok) ? 0 : 1;
} catch (error) {
  record("end-to-end run", false, String(error?.stack ?? error).slice(0, 1500));
  const logFile = path.join(root, "code-server.log");
  if (fs.existsSync(logFile)) console.log(`# code-server log (tail):\n${fs.readFileSync(logFile, "utf8").split("\n").slice(-40).join("\n")}`);
  exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  if (codeServer && codeServer.exitCode === null) {
    try {
      process.kill(-codeServer.pid, "SIGTERM");
    } catch {
      // gone
    }
    await Promise.race([new Promise((r) => codeServer.once("exit", r)), sleep(5000)]);
    try {
      process.kill(-codeServer.pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  const passed = checks.filter((c) => c.ok).length;
  console.log(`# pass ${passed}`);
  console.log(`# fail ${checks.length - passed}`);
  if (exitCode !== 0 || KEEP) console.log(`# kept ${root} (code-server.log, report.json, screenshots)`);
  else fs.rmSync(root, { recursive: true, force: true });
  process.exitCode = exitCode;
}
