// The bundles' third-party notices: every npm package esbuild put into a bundle (an input under node_modules
// in its metafile), with its version, licence and licence text, in one file the build writes next to the
// bundles. Regenerated at every build, it cannot go stale; the image ships it in /licenses
// (scripts/image-layout.ts), and test/notices.test.ts checks it against the metafile.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';

export const NOTICES_FILE = 'THIRD-PARTY-NOTICES.txt';
/** Each bundle's esbuild metafile, by bundle file name: what the notices were made from. */
export const METAFILES_FILE = 'bundles.meta.json';

/** The package directory of an input path: the last node_modules/NAME or node_modules/@SCOPE/NAME in it. */
export function packageDir(input: string): string | undefined {
  return /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1];
}

const LICENCE_FILE = /^(licen[cs]e|copying)([.-].*)?$/i;
const NOTICE_FILE = /^notice(\..*)?$/i;

/** The notices text for the given metafiles (bundle file name -> metafile), paths relative to `root`. */
export function thirdPartyNotices(metafiles: Record<string, Metafile>, root: string): string {
  const bundlesOf = new Map<string, Set<string>>();
  for (const [bundle, metafile] of Object.entries(metafiles)) {
    for (const output of Object.values(metafile.outputs)) {
      for (const input of Object.keys(output.inputs)) {
        const dir = packageDir(input);
        if (dir) bundlesOf.set(dir, (bundlesOf.get(dir) ?? new Set()).add(bundle));
      }
    }
  }
  const packages = [...bundlesOf].map(([dir, bundles]) => {
    const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
    const files = readdirSync(join(root, dir)).sort();
    const licences = files.filter((f) => LICENCE_FILE.test(f));
    if (licences.length === 0) throw new Error(`${dir}: no licence file (LICENSE, COPYING, ...) to put in ${NOTICES_FILE}`);
    const texts = [...licences, ...files.filter((f) => NOTICE_FILE.test(f))].map((f) => `--- ${dir}/${f}\n\n${readFileSync(join(root, dir, f), 'utf8').trimEnd()}\n`);
    return { title: `${pkg.name} ${pkg.version} (${pkg.license ?? 'see its licence'}), in ${[...bundles].sort().join(', ')}`, texts };
  });
  packages.sort((a, b) => (a.title < b.title ? -1 : 1));
  const rule = '='.repeat(100);
  return [
    `Third-party software bundled into ${Object.keys(metafiles).sort().join(' and ')} (the image's /server and /client):`,
    `every npm package with code in a bundle, from esbuild's metafile, with its licence. Written by the build`,
    `(scripts/notices.ts); grpc-helloworld itself is Apache-2.0 (LICENSE).`,
    '',
    `${packages.length} packages:`,
    ...packages.map((p) => `  ${p.title}`),
    ...packages.flatMap((p) => ['', rule, p.title, rule, '', ...p.texts]),
  ].join('\n');
}
