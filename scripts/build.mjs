// Bundles each program into one self-contained ESM file: dist/server.js and dist/client.js.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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
await Promise.all(
  Object.entries(entryPoints).map(([name, entry]) =>
    build({
      entryPoints: [join(root, entry)],
      outfile: join(root, `dist/${name}.js`),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      minify: true,
      legalComments: 'linked',
      // CommonJS dependencies call require() for Node built-ins and read __dirname; give the ESM bundle both.
      banner: {
        js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);const __filename=new URL(import.meta.url).pathname,__dirname=__filename.slice(0,__filename.lastIndexOf('/'));",
      },
      plugins: [protoLoaderShim],
      logLevel: 'warning',
    }),
  ),
);
