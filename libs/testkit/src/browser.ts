import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/**
 * Headless Chromium from the system (Debian's `chromium` package): playwright's own browser downloads
 * cannot run here. The flags keep it from calling home, which on a closed network floods it with
 * refused connections.
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function findChromium(): string | undefined {
  return [process.env['AISLE_CHROMIUM_BIN'], '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string =>
    Boolean(p && existsSync(p)),
  );
}

export interface Browser {
  readonly context: BrowserContext;
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh profile directory (removed on close). */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath)
    throw new Error(
      'Chromium not found: `apt-get install -y chromium` (npm test installs it) or set AISLE_CHROMIUM_BIN',
    );
  const profile = mkdtempSync(join(tmpdir(), 'aisle-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async newPage(viewport) {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export interface PageVisit {
  name: string;
  path: string;
  /** A selector that shows the page has its data. */
  ready: string;
}

export const VIEWPORTS = {
  desktop: { width: 1280, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

/** Opens each page at each viewport and saves a full-page PNG; returns the files written. */
export async function screenshotPages(
  browser: Browser,
  baseUrl: string,
  visits: readonly PageVisit[],
  outDir: string,
  viewports: ReadonlyArray<keyof typeof VIEWPORTS> = ['desktop', 'phone'],
): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  for (const vp of viewports) {
    const page = await browser.newPage(VIEWPORTS[vp]);
    try {
      for (const v of visits) {
        await page.goto(new URL(v.path, baseUrl).toString());
        await page.waitForSelector(v.ready, { timeout: 30_000 });
        const file = join(outDir, `${v.name}-${vp}.png`);
        await page.screenshot({ path: file, fullPage: true });
        files.push(file);
      }
    } finally {
      await page.close();
    }
  }
  return files;
}

export type { Page as BrowserPage } from 'playwright-core';
