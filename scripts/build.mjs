// Bundles each program into one self-contained file: dist/server.js (ESM) and dist/client.cjs (CommonJS; why in
// scripts/bundles.ts), and writes the third-party notices of what went into them (scripts/notices.ts).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { BUNDLE_FILES } from './bundles.ts';
import { METAFILES_FILE, NOTICES_FILE, thirdPartyNotices } from './notices.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
execFileSync(process.execPath, [join(root, 'scripts/gen-embedded.mjs')], { stdio: 'inherit' });

const shim = join(root, 'scripts/proto-loader-bundle-shim.ts');
/** @type {import('esbuild').Plugin} */
const protoLoaderShim = {
  name: 'proto-loader-shim',
  setup(b) {
    b.onResolve({ filter: /^@grpc\/proto-loader$/ }, (args) =>
      /grpc-health-check|@grpc[\\/]reflection/.test(args.importer) ? { path: shim } : undefined,
    );
  },
};

const entryPoints = { server: 'src/server/main.ts', client: 'src/client/main.ts' };
// CommonJS dependencies call require() for Node built-ins and read __dirname; give the ESM bundle both.
const esmBanner =
  "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);const __filename=new URL(import.meta.url).pathname,__dirname=__filename.slice(0,__filename.lastIndexOf('/'));";
const results = await Promise.all(
  Object.entries(entryPoints).map(([name, entry]) => {
    const esm = BUNDLE_FILES[name].endsWith('.js');
    return build({
      absWorkingDir: root, // the metafile's paths are relative to it
      entryPoints: [join(root, entry)],
      outfile: join(root, 'dist', BUNDLE_FILES[name]),
      bundle: true,
      platform: 'node',
      format: esm ? 'esm' : 'cjs',
      target: 'node24',
      minify: true,
      legalComments: 'none', // the notices carry every bundled package's whole licence
      metafile: true,
      ...(esm ? { banner: { js: esmBanner } } : { inject: [join(root, 'scripts/client-performance-shim.ts')] }),
      plugins: [protoLoaderShim],
      logLevel: 'warning',
    });
  }),
);
const metafiles = Object.fromEntries(Object.keys(entryPoints).map((name, i) => [BUNDLE_FILES[name], results[i].metafile]));
writeFileSync(join(root, 'dist', METAFILES_FILE), JSON.stringify(metafiles));
writeFileSync(join(root, 'dist', NOTICES_FILE), thirdPartyNotices(metafiles, root));
