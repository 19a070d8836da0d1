// Drives the keras_vae web page in headless Chromium for the browser tests
// and the browser benchmark: `node drive.mjs job.json` prints one JSON line.
//
// job.json: {"url", "chromium" (the browser's path), "timeout_ms",
//   "steps": [{"evaluate": "async () => ..."} | {"click": "#id", "at": [fx, fy]}
//             | {"select": "#id", "value": "7"} | {"screenshot": "path.png"}]}
// Every request to a host other than 127.0.0.1 is refused and reported, so a
// test can assert that the page reaches nothing off this machine.
import { readFile } from 'node:fs/promises';
import puppeteer from 'puppeteer-core';

// Wait until the page's handlers have finished (app.js counts them in busy).
async function settled(page) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  await page.waitForFunction(() => window.kerasVae.state.busy === 0, { timeout: 60000 });
}

const job = JSON.parse(await readFile(process.argv[2], 'utf8'));
const browser = await puppeteer.launch({
  executablePath: job.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions',
         '--disable-background-networking', '--disable-component-update'],
});
const report = { refused: [], console: [], steps: [] };
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 1000 });
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (['data:', 'blob:'].includes(url.protocol) || url.hostname === '127.0.0.1') {
      request.continue();
    } else {
      report.refused.push(request.url());
      request.abort('blockedbyclient');
    }
  });
  page.on('console', (message) => report.console.push(message.text()));
  page.on('pageerror', (error) => report.console.push(`pageerror: ${error.message}`));
  const started = Date.now();
  await page.goto(job.url, { waitUntil: 'load' });
  await page.waitForFunction(() => document.body.dataset.state !== 'loading',
                             { timeout: job.timeout_ms || 60000 });
  report.load_ms = Date.now() - started;
  report.state = await page.evaluate(() => document.body.dataset.state);
  report.status = await page.$eval('#status', (e) => e.textContent);
  report.cross_origin_isolated = await page.evaluate(() => window.crossOriginIsolated);
  for (const step of job.steps || []) {
    if (step.evaluate) {
      report.steps.push(await page.evaluate(`(${step.evaluate})()`));
    } else if (step.click) {
      const element = await page.$(step.click);
      const box = await element.boundingBox();
      const [fx, fy] = step.at || [0.5, 0.5];
      await page.mouse.click(box.x + fx * box.width, box.y + fy * box.height);
      await settled(page);
      report.steps.push({ clicked: step.click });
    } else if (step.select) {
      await page.select(step.select, step.value);
      await settled(page);
      report.steps.push({ selected: step.value });
    } else if (step.screenshot) {
      await page.screenshot({ path: step.screenshot, fullPage: true });
      report.steps.push({ screenshot: step.screenshot });
    }
  }
} catch (error) {
  report.error = String(error.stack || error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
