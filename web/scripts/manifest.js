// The web client's manifest: the SHA-384 digest (in Subresource Integrity form) of every
// file the meeting page can load, so an operator can publish what it serves and anyone can
// check a running server against it. There is no build step: the files are this
// repository's and the exact npm packages of package-lock.json, so a checkout of the same
// commit and `npm ci` reproduce the same manifest byte for byte.
//
//   node scripts/manifest.js                  the manifest (JSON) of this checkout
//   node scripts/manifest.js --check URL      fetch every file from URL (e.g.
//                                             https://keys.example.com/web/) and compare;
//                                             exit 1 on any difference
//   node scripts/manifest.js --importmap      the import map's "integrity" section, which
//                                             makes the browser refuse a changed module

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = join(dirname(fileURLToPath(import.meta.url)), '..');
/** What the page loads: its own files and the pinned packages' browser files. */
const ROOTS = ['meeting.html', 'meeting.js', 'index.html', 'selfcheck.js', 'src'];
const PACKAGES = ['node_modules/mcl-wasm/browser', 'node_modules/@noble/hashes', 'node_modules/qr'];
const SERVED = /\.(html|js|wasm|json)$/;

function walk(path, out) {
  const full = join(WEB, path);
  if (statSync(full).isDirectory()) {
    for (const name of readdirSync(full).sort()) walk(join(path, name), out);
  } else if (SERVED.test(path) && !path.endsWith('.d.ts')) {
    out.push(path.split(sep).join('/'));
  }
  return out;
}

export function integrity(bytes) {
  return `sha384-${createHash('sha384').update(bytes).digest('base64')}`;
}

/** {files: {path: integrity}, digest: integrity of the sorted list}. */
export function manifest() {
  const files = {};
  for (const root of [...ROOTS, ...PACKAGES]) {
    for (const path of walk(root, [])) files[path] = integrity(readFileSync(join(WEB, path)));
  }
  const listing = Object.entries(files)
    .map(([p, d]) => `${d}  ${p}\n`)
    .join('');
  return { files, digest: integrity(Buffer.from(listing)) };
}

/** Compare what `base` serves with this checkout: the paths that differ or are missing. */
export async function check(base, { fetchFn = fetch } = {}) {
  const { files } = manifest();
  const bad = [];
  for (const [path, expected] of Object.entries(files)) {
    const response = await fetchFn(new URL(path, base.endsWith('/') ? base : `${base}/`));
    const got = response.ok ? integrity(Buffer.from(await response.arrayBuffer())) : `HTTP ${response.status}`;
    if (got !== expected) bad.push({ path, expected, got });
  }
  return { checked: Object.keys(files).length, bad };
}

async function main(argv) {
  if (argv[0] === '--check') {
    const { checked, bad } = await check(argv[1]);
    for (const b of bad) console.log(`DIFFERS ${b.path}: served ${b.got}, expected ${b.expected}`);
    console.log(`${checked - bad.length}/${checked} files as published`);
    return bad.length ? 1 : 0;
  }
  const m = manifest();
  if (argv[0] === '--importmap') {
    const integrityMap = Object.fromEntries(
      Object.entries(m.files)
        .filter(([p]) => p.endsWith('.js'))
        .map(([p, d]) => [`./${p}`, d]),
    );
    console.log(JSON.stringify({ integrity: integrityMap }, null, 1));
    return 0;
  }
  console.log(JSON.stringify(m, null, 1));
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
