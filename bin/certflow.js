#!/usr/bin/env node
// Entry point of the `certflow` command. The sources are TypeScript; there is no build step
// between `npm ci` and a running CA: bin/bundle.js compiles them on first use and keeps the
// result as a cache (or runs them through tsx where it cannot).
import { cliMain } from './bundle.js';

const main = await cliMain();
await main();
