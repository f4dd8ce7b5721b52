// The admin page in a real headless Chromium (Debian's), driven by playwright-core.
// Run by tests/e2e/ui.rs with ISOLATE_URL, ISOLATE_TOKEN, CHROMIUM, SCREENSHOT and
// USER_DATA_DIR set; exits non-zero, with the reason on stderr, on any failure or on any
// console error or page error.
import { chromium } from "playwright-core";

const url = process.env.ISOLATE_URL;
const token = process.env.ISOLATE_TOKEN;
const errors = [];
const context = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1200, height: 1400 },
});
const fail = async (message) => {
  console.error(message);
  await context.close();
  process.exit(1);
};
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error") errors.push("console: " + m.text());
  });
  page.on("pageerror", (e) => errors.push("page error: " + e.message));
  page.on("requestfailed", (r) => errors.push("request failed: " + r.url()));
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(url + "/ui");
  await page.waitForSelector("#login:not([hidden])");
  await page.fill("#token", token);
  await page.click("#login-form button");
  // The worker table fills from /status.
  await page.waitForFunction(() => document.querySelectorAll("#workers tbody tr").length >= 1, null, { timeout: 15000 });
  const layers = await page.textContent("#layers");
  if (!layers.includes("seccomp: active")) await fail("the sandbox layers are not shown: " + layers);
  // The playground runs a snippet and shows its result and logs.
  await page.fill("#code", "console.log('from the playground');\nreturn env.xs.map((x) => x * 2);");
  await page.fill("#env", '{"xs": [1, 2, 21]}');
  await page.click("#run");
  await page.waitForFunction(() => document.querySelector("#outcome-title").textContent.startsWith("Result"), null, { timeout: 15000 });
  const result = JSON.parse(await page.textContent("#result"));
  if (JSON.stringify(result) !== "[2,4,42]") await fail("unexpected result " + JSON.stringify(result));
  const logs = await page.textContent("#logs");
  if (!logs.includes("[log] from the playground")) await fail("unexpected logs " + logs);
  // Up to here nothing may have logged an error. The failing snippet below is answered 422,
  // which Chromium itself reports as a failed resource load: that one line is expected.
  if (errors.length) await fail("errors in the page:\n" + errors.join("\n"));
  const before = errors.length;
  await page.fill("#code", "throw new TypeError('broken on purpose')");
  await page.click("#run");
  await page.waitForFunction(() => document.querySelector("#outcome-title").textContent.startsWith("Error"), null, { timeout: 15000 });
  const title = await page.textContent("#outcome-title");
  if (!title.includes("RUNTIME")) await fail("unexpected error title " + title);
  // The recent executions list the runs, without their code.
  await page.waitForFunction(() => document.querySelectorAll("#recent tbody tr").length >= 2, null, { timeout: 10000 });
  const recent = await page.textContent("#recent");
  if (recent.includes("playground") || recent.includes("broken on purpose")) await fail("code in the recent list");
  // The keys table counts them for the key the token is (`default`).
  await page.waitForFunction(() => {
    const row = document.querySelector("#keys tbody tr");
    return row && row.cells[0].textContent === "default" && Number(row.cells[2].textContent) >= 2
      && Number(row.cells[6].textContent) >= 2;
  }, null, { timeout: 10000 });
  if (requests.some((r) => r.includes(token))) await fail("the token appeared in a URL");
  const stored = await page.evaluate(() => sessionStorage.getItem("isolate-service-token"));
  if (stored !== token) await fail("the token is not in sessionStorage");
  await page.waitForTimeout(3500);
  await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  const unexpected = errors.slice(before).filter(
    (e) => !/^console: Failed to load resource: the server responded with a status of 422\b/.test(e),
  );
  if (unexpected.length || errors.length - before > 1) await fail("errors in the page:\n" + errors.join("\n"));
  console.log("ui test passed");
} catch (e) {
  await fail("ui test failed: " + (e && e.stack ? e.stack : e));
}
await context.close();
