// A small driver for headless Chromium over the DevTools protocol on a pipe
// (--remote-debugging-pipe: the browser reads fd 3 and writes fd 4,
// NUL-separated JSON), so that nothing has to be installed from npm.
// Commands come as JSON lines on stdin; each gets one JSON line on stdout.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { StringDecoder } from "node:string_decoder";

const profile = mkdtempSync(join(tmpdir(), "spanline-chromium-"));
const chrome = spawn(
  process.env.CHROMIUM || "chromium",
  [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--remote-debugging-pipe", "--window-size=1280,800", `--user-data-dir=${profile}`,
    "about:blank",
  ],
  { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] },
);
const quit = () => {
  try { chrome.kill("SIGKILL"); } catch (_) {}
  try { rmSync(profile, { recursive: true, force: true }); } catch (_) {}
};
process.on("exit", quit);
chrome.on("error", (e) => { answer({ error: `chromium did not start: ${e.message}` }); process.exit(1); });

const toChrome = chrome.stdio[3];
const decoder = new StringDecoder("utf8");
let buffer = "";
let nextId = 1;
const waiting = new Map();
const events = []; // { method, resolve }: waiting for an event
const nextEvent = (method) => new Promise((resolve) => events.push({ method, resolve }));
chrome.stdio[4].on("data", (chunk) => {
  buffer += decoder.write(chunk);
  let end;
  while ((end = buffer.indexOf("\0")) >= 0) {
    const msg = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    const resolve = msg.id !== undefined && waiting.get(msg.id);
    if (resolve) { waiting.delete(msg.id); resolve(msg); }
    if (msg.method) for (const waiter of events.splice(0)) {
      if (waiter.method === msg.method) waiter.resolve(msg); else events.push(waiter);
    }
  }
});
const send = (method, params = {}, sessionId) => new Promise((resolve) => {
  const id = nextId++;
  waiting.set(id, resolve);
  toChrome.write(JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params }) + "\0");
});
const answer = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

let session = null;
async function page() {
  if (!session) {
    const { result } = await send("Target.createTarget", { url: "about:blank" });
    const attached = await send("Target.attachToTarget", { targetId: result.targetId, flatten: true });
    session = attached.result.sessionId;
    await send("Page.enable", {}, session);
  }
}
async function run(cmd) {
  if (cmd.headers !== undefined) {
    // Sent with every request of the page from now on (event streams too).
    await page();
    await send("Network.enable", {}, session);
    const res = await send("Network.setExtraHTTPHeaders", { headers: cmd.headers }, session);
    if (res.error) return { error: JSON.stringify(res.error) };
    return { ok: true };
  }
  if (cmd.open !== undefined) {
    await page();
    const loaded = nextEvent("Page.loadEventFired");
    const nav = await send("Page.navigate", { url: cmd.open }, session);
    if (nav.error || nav.result.errorText) return { error: JSON.stringify(nav.error || nav.result.errorText) };
    await loaded;
    return { ok: true };
  }
  if (cmd.eval !== undefined) {
    const res = await send("Runtime.evaluate", { expression: cmd.eval, returnByValue: true, awaitPromise: true }, session);
    if (res.error) return { error: JSON.stringify(res.error) };
    if (res.result.exceptionDetails) return { error: JSON.stringify(res.result.exceptionDetails) };
    return { value: res.result.result.value === undefined ? null : res.result.result.value };
  }
  if (cmd.screenshot !== undefined) {
    const res = await send("Page.captureScreenshot", { format: "png" }, session);
    if (res.error) return { error: JSON.stringify(res.error) };
    writeFileSync(cmd.screenshot, Buffer.from(res.result.data, "base64"));
    return { ok: true };
  }
  if (cmd.heap !== undefined) {
    await send("HeapProfiler.collectGarbage", {}, session);
    const res = await send("Runtime.getHeapUsage", {}, session);
    if (res.error) return { error: JSON.stringify(res.error) };
    return { value: res.result.usedSize };
  }
  return { error: `unknown command ${JSON.stringify(cmd)}` };
}

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    try { answer(await run(JSON.parse(line))); } catch (e) { answer({ error: String(e) }); }
  });
});
lines.on("close", () => queue.then(() => process.exit(0)));
