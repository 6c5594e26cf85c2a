// The README and the documents beside it link to each other and into their own sections; a link that no longer
// resolves (a file moved, a heading renamed) is a dead end for the reader. Every relative link must name a file
// that exists and, with a #fragment, a heading of that file (GitHub's anchor rules).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CODE_BLOCK, root } from './k8s-manifests.ts';

const documents = ['README.md', 'k8s/README.md', 'e2e/README.md', 'certs/README.md', 'test/schemas/README.md']
  .concat(readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`))
  .filter((f) => existsSync(join(root, f)));

/** GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`. */
export function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutCode(markdown).matchAll(/^#{1,6} +(.+)$/gm)) {
    const base = anchorOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function withoutCode(markdown: string): string {
  return markdown.replace(CODE_BLOCK, '');
}

function links(markdown: string): string[] {
  return [...withoutCode(markdown).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
}

describe('documentation links', () => {
  it('knows GitHub\'s anchors', () => {
    expect(anchorOf('Ingress gateway (`k8s/gateway`, `k8s/gateway-passthrough`)')).toBe('ingress-gateway-k8sgateway-k8sgateway-passthrough');
    expect(anchorOf('How the server talks gRPC')).toBe('how-the-server-talks-grpc');
    expect(anchors('# A\n```\n# not a heading\n```\n## A\n')).toEqual(new Set(['a', 'a-1']));
  });

  it.each(documents)('%s: every relative link resolves, #fragments included', (doc) => {
    const text = readFileSync(join(root, doc), 'utf8');
    const dead: string[] = [];
    for (const link of links(text)) {
      const [path, fragment] = link.split('#', 2) as [string, string | undefined];
      const target = path === '' ? join(root, doc) : join(root, dirname(doc), path);
      if (!existsSync(target)) {
        dead.push(`${link} (no ${relative(root, target)})`);
        continue;
      }
      if (fragment !== undefined && target.endsWith('.md') && !anchors(readFileSync(target, 'utf8')).has(fragment)) {
        dead.push(`${link} (no heading #${fragment} in ${relative(root, target)})`);
      }
    }
    expect(dead).toEqual([]);
  });
});
