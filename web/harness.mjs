// What the browser scripts share (page-test.mjs, bench.mjs, engine/engine-test.mjs): a
// loopback server for one folder, headless Chromium on WebGPU through Playwright, and a
// tiny test runner that prints one line per test and "N passed, M failed".
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";

const TYPES = {
  ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript",
  ".wasm": "application/wasm", ".json": "application/json", ".onnx": "application/octet-stream",
};

/**
 * Serves the files of `root` that `allowed(file)` accepts (default: all) on 127.0.0.1, "/" as
 * index.html; resolves to `{ server, url }`.
 */
export async function serve(root, allowed = () => true) {
  const server = createServer(async (request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url, "http://x").pathname));
    const file = join(root, path === "/" ? "index.html" : path);
    try {
      if (!allowed(file)) throw new Error("not served");
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      response.end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

/** The flags of a headless WebGPU Chromium with no background traffic, unless ALIBI_CHROMIUM_FLAGS says. */
const DEFAULT_FLAGS = "--enable-unsafe-webgpu --disable-background-networking --disable-component-update "
  + "--disable-sync --no-first-run --disable-quic";

/** Chromium (CHROME_BIN, else Debian's) with ALIBI_CHROMIUM_FLAGS; resolves to `{ browser, page }`. */
export async function launch() {
  const flags = (process.env.ALIBI_CHROMIUM_FLAGS ?? DEFAULT_FLAGS).split(" ").filter(Boolean);
  const browser = await chromium.launch({
    executablePath: process.env.CHROME_BIN ?? "/usr/lib/chromium/chromium",
    args: flags,
  });
  return { browser, page: await browser.newPage() };
}

/** `{ test, assert, finish }`: `finish()` prints the count and exits non-zero on a failure. */
export function tests() {
  let passed = 0;
  let failed = 0;
  return {
    async test(name, body) {
      try {
        await body();
        passed++;
        console.log(`test ${name} ... ok`);
      } catch (error) {
        failed++;
        console.log(`test ${name} ... FAILED\n  ${error.stack ?? error}`);
      }
    },
    assert(condition, message) {
      if (!condition) throw new Error(message);
    },
    finish(...closing) {
      for (const close of closing) close();
      console.log(`${passed} passed, ${failed} failed`);
      process.exit(failed === 0 ? 0 : 1);
    },
  };
}
