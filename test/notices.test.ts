// The licences: LICENSE at the root (Apache-2.0, as package.json says), and the third-party notices the build
// writes (dist/THIRD-PARTY-NOTICES.txt, the image's /licenses): every npm package that the bundles' own esbuild
// metafiles list has its notice there, licence text and all.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { BUNDLE_FILES } from '../scripts/bundles.ts';
import { METAFILES_FILE, NOTICES_FILE, thirdPartyNotices } from '../scripts/notices.ts';
import { root } from './helpers/spawn.ts';

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('LICENSE', () => {
  it('is the Apache License 2.0, word for word, as package.json says', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { license: string };
    expect(pkg.license).toBe('Apache-2.0');
    const text = readFileSync(join(root, 'LICENSE'));
    expect(text.toString('utf8')).toMatch(/^\s+Apache License\n\s+Version 2\.0, January 2004\n/);
    expect(createHash('md5').update(text).digest('hex')).toBe('3b83ef96387f14655fc854ddc3c6bd57'); // https://www.apache.org/licenses/LICENSE-2.0.txt
  });
});

describe(`dist/${NOTICES_FILE}`, () => {
  const metafiles = JSON.parse(readFileSync(join(root, 'dist', METAFILES_FILE), 'utf8')) as Record<string, Metafile>;
  const notices = readFileSync(join(root, 'dist', NOTICES_FILE), 'utf8');

  /** node_modules/NAME or node_modules/@SCOPE/NAME of every input in the bundles' outputs */
  const packageDirs = new Set<string>();
  for (const metafile of Object.values(metafiles)) {
    for (const output of Object.values(metafile.outputs)) {
      for (const input of Object.keys(output.inputs)) {
        const at = input.lastIndexOf('node_modules/') + 'node_modules/'.length;
        if (at < 'node_modules/'.length) continue;
        const [first, second] = input.slice(at).split('/');
        packageDirs.add(input.slice(0, at) + (first!.startsWith('@') ? `${first}/${second}` : first));
      }
    }
  }

  it('is made from the metafiles of both bundles, and lists as many packages as they hold', () => {
    expect(Object.keys(metafiles).sort()).toEqual(Object.values(BUNDLE_FILES).sort());
    expect(packageDirs.size).toBeGreaterThanOrEqual(20);
    expect(/^(\d+) packages:$/m.exec(notices)?.[1]).toBe(String(packageDirs.size));
  });

  it('has every package of the metafiles: name, version, licence, and the whole licence text', () => {
    for (const dir of packageDirs) {
      const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { name: string; version: string; license: string };
      expect(notices, dir).toMatch(new RegExp(`^${escape(pkg.name)} ${escape(pkg.version)} \\(${escape(pkg.license)}\\), in `, 'm'));
      const licences = readdirSync(join(root, dir)).filter((f) => /^(licen[cs]e|copying)/i.test(f));
      expect(licences.length, dir).toBeGreaterThan(0);
      for (const f of licences) expect(notices.includes(readFileSync(join(root, dir, f), 'utf8').trimEnd()), `${dir}/${f}`).toBe(true);
    }
  });

  it('names the packages the image used to leave out', () => {
    for (const name of ['@grpc/grpc-js', 'protobufjs', 'p-retry', 'hdr-histogram-js', 'yargs-parser', 'long', 'grpc-health-check']) {
      expect(notices).toMatch(new RegExp(`^  ${escape(name)} \\d`, 'm'));
    }
  });

  it('the build stops, naming the package, when one ships no licence file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'notices-'));
    try {
      mkdirSync(join(dir, 'node_modules/unlicensed'), { recursive: true });
      writeFileSync(join(dir, 'node_modules/unlicensed/package.json'), JSON.stringify({ name: 'unlicensed', version: '1.0.0', license: 'MIT' }));
      const metafile = { inputs: {}, outputs: { 'dist/x.js': { inputs: { 'node_modules/unlicensed/index.js': { bytesInOutput: 10 } } } } } as unknown as Metafile;
      expect(() => thirdPartyNotices({ 'x.js': metafile }, dir)).toThrow(`node_modules/unlicensed: no licence file (LICENSE, COPYING, ...) to put in ${NOTICES_FILE}`);
      writeFileSync(join(dir, 'node_modules/unlicensed/LICENSE'), 'MIT License, text here');
      expect(thirdPartyNotices({ 'x.js': metafile }, dir)).toContain('unlicensed 1.0.0 (MIT), in x.js');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
