import { chromium, type Browser } from 'playwright-core';
import { requireTool } from './tools.js';

/** Debian's chromium, headless, quiet: no GPU, no QUIC, nothing fetched in the background. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A headless Chromium; Playwright gives each launch a fresh temporary profile (user data directory). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: requireTool('chromium'), args: ARGS });
}
