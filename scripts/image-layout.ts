// Lays out, under DIR, exactly the files the Dockerfile's runtime stage copies, at the same paths:
//   DIR/server, DIR/client   the bundles (dist/server.js, dist/client.cjs) behind a shebang for the runtime image's node, mode 0555
//   DIR/certs/               the TEST-ONLY PKI (certificates, keys and the README that says so), mode 0444
//   DIR/licenses/            LICENSE (this project's, Apache-2.0) and THIRD-PARTY-NOTICES.txt (every npm package in the
//                            bundles with its licence, written by the build: scripts/notices.ts), mode 0444
// The Dockerfile runs this script in its build stage (`node scripts/image-layout.ts /layout`) and its runtime
// stage copies /layout/<path> to /<path>, so the image and a local layout are made by the same code;
// test/image-layout.test.ts checks that the COPY lines and this layout still correspond, and runs DIR/server
// and DIR/client with the test's Node.
//
// Usage: node scripts/image-layout.ts DIR     (npm run image:layout -- DIR; needs `npm run build` first)
// DIR must not exist, be empty, or hold a previous layout (only the entries below): it is replaced whole.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_FILES, type Program } from './bundles.ts';
import { NOTICES_FILE } from './notices.ts';
import { SERVER_NODE_FLAGS } from '../src/server/v8-flags.ts';

/** Where `node` lives in the runtime image (gcr.io/distroless/nodejs24-debian12): the bundles' shebang. */
export const RUNTIME_NODE = '/nodejs/bin/node';

/** The top-level entries of a layout, each one COPY in the Dockerfile's runtime stage. */
export const LAYOUT_ENTRIES = ['server', 'client', 'certs', 'licenses'];

/** The files of licenses/: the project's licence and the notices the build writes to dist/. */
export const LICENSE_FILES = ['LICENSE', NOTICES_FILE];

/** The files of certs/ that ship: everything a user needs for -tls, -ca_file and mTLS, not the CA's key. */
export const SHIPPED_CERTS = ['README.md', 'ca.pem', 'server.pem', 'server-key.pem', 'client.pem', 'client-key.pem'];

const EXECUTABLE = 0o555;
const DATA = 0o444;
const DIRECTORY = 0o755;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

class LayoutError extends Error {}

/** Node flags in each program's shebang: the server's are the serving processes' (src/server/v8-flags.ts). */
export const NODE_FLAGS: Record<string, string> = { server: SERVER_NODE_FLAGS.join(' '), client: '' };

/** A bundle with its shebang replaced by the runtime image's node (esbuild keeps none; a stray one is dropped). */
export function withShebang(source: string, flags = ''): string {
  const body = source.startsWith('#!') ? source.slice(source.indexOf('\n') + 1) : source;
  return `#!${RUNTIME_NODE}${flags ? ` ${flags}` : ''}\n${body}`;
}

function prepare(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new LayoutError(`${dir} exists and is not a directory`);
    const stray = readdirSync(dir).filter((name) => !LAYOUT_ENTRIES.includes(name));
    if (stray.length > 0) {
      throw new LayoutError(`${dir} holds ${stray.map((s) => JSON.stringify(s)).join(', ')}: not a previous layout, refusing to replace it`);
    }
    for (const name of LAYOUT_ENTRIES) {
      const path = join(dir, name);
      if (existsSync(path)) {
        rmSync(path, { recursive: true, force: true });
      }
    }
  }
  mkdirSync(dir, { recursive: true });
}

export function layOut(dir: string, { dist = join(root, 'dist'), certs = join(root, 'certs') } = {}): void {
  const programs = Object.keys(BUNDLE_FILES) as Program[];
  const licenses: Record<string, string> = { LICENSE: join(root, 'LICENSE'), [NOTICES_FILE]: join(dist, NOTICES_FILE) };
  for (const built of [...programs.map((name) => join(dist, BUNDLE_FILES[name])), licenses[NOTICES_FILE]!]) {
    if (!existsSync(built)) throw new LayoutError(`${built} is missing: run \`npm run build\` first`);
  }
  for (const name of SHIPPED_CERTS) {
    if (!existsSync(join(certs, name))) throw new LayoutError(`${join(certs, name)} is missing`);
  }
  prepare(dir);

  for (const name of programs) {
    const target = join(dir, name);
    writeFileSync(target, withShebang(readFileSync(join(dist, BUNDLE_FILES[name]), 'utf8'), NODE_FLAGS[name]));
    chmodSync(target, EXECUTABLE);
  }

  mkdirSync(join(dir, 'certs'), { mode: DIRECTORY });
  for (const name of SHIPPED_CERTS) {
    copyFileSync(join(certs, name), join(dir, 'certs', name));
    chmodSync(join(dir, 'certs', name), DATA);
  }

  mkdirSync(join(dir, 'licenses'), { mode: DIRECTORY });
  for (const name of LICENSE_FILES) {
    copyFileSync(licenses[name]!, join(dir, 'licenses', name));
    chmodSync(join(dir, 'licenses', name), DATA);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const USAGE = 'usage: node scripts/image-layout.ts DIR   (or: npm run image:layout -- DIR)';
  const [{ default: yargs }, { hideBin }] = await Promise.all([import('yargs'), import('yargs/helpers')]);
  const { _: dirs } = yargs(hideBin(process.argv))
    .usage(USAGE)
    .demandCommand(1, 1, 'want one DIR', 'want one DIR')
    .strict()
    .version(false)
    .fail((message) => {
      process.stderr.write(`${USAGE}\n${message}\n`);
      process.exit(2);
    })
    .parseSync();
  try {
    layOut(resolve(String(dirs[0])));
  } catch (err) {
    process.stderr.write(`image-layout: ${err instanceof LayoutError ? err.message : String(err).split('\n')[0]}\n`);
    process.exit(err instanceof LayoutError ? 2 : 1);
  }
}
