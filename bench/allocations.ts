// What the server allocates per call under load (docs/performance.md, "Allocation per call"): the built server
// (-workers 1, as the image runs it otherwise) with the inspector on, V8's sampling heap profiler counting the
// objects young and full collections took too, while h2load makes N unary calls (SayHello, health Check) or
// the streams bench's grpc-go peer makes N bidi round trips. Every young collection stops the worker with all
// its calls in flight, so bytes per call is what sets the server's tail. A measurement, not a test.
//
//   node bench/allocations.ts [--calls 100000] [--only sayhello,health,bidi] [--top 0] [--server dist/server.js]
//
// --top N lists the N functions that allocated most; their names are the bundle's (minified, unless --server
// points at a build made without minification).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SERVER_NODE_FLAGS } from '../src/server/v8-flags.ts';
import { dist, fmt, freePort, machine, node, startServerProcess, which } from './lib.ts';
import { h2loadArgs, HEALTH_CHECK_CALL, SAY_HELLO_CALL } from './server.ts';
import { streamPeer } from './streams.ts';

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children?: ProfileNode[];
}

interface Part {
  label: string;
  /** the load's command, for the server on `port`; undefined: a tool is missing (why) */
  load(port: number, calls: number): string[] | string;
}

/** A DevTools protocol session with one inspector target. */
async function inspect(port: number) {
  const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(target!.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve, { once: true });
    ws.addEventListener('error', reject, { once: true });
  });
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  });
  const send = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve) => {
      waiting.set(++id, resolve as (r: unknown) => void);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close() };
}

function byFunction(head: ProfileNode): { total: number; top: [string, number][] } {
  const sizes = new Map<string, number>();
  let total = 0;
  const walk = (n: ProfileNode) => {
    if (n.selfSize > 0) {
      const f = n.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
      sizes.set(key, (sizes.get(key) ?? 0) + n.selfSize);
      total += n.selfSize;
    }
    for (const c of n.children ?? []) walk(c);
  };
  walk(head);
  return { total, top: [...sizes].sort((a, b) => b[1] - a[1]) };
}

async function main() {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '100000' },
      only: { type: 'string', default: 'sayhello,health,bidi' },
      top: { type: 'string', default: '0' },
      server: { type: 'string', default: dist('server') },
    },
  });
  const calls = Number(values.calls);
  const dir = mkdtempSync(join(tmpdir(), 'bench-allocations-'));
  const h2load = (path: string, request: Buffer) => (port: number, n: number) => {
    if (!which('h2load')) return 'h2load not found (apt-get install nghttp2-client)';
    const body = join(dir, `${path.replaceAll('/', '_')}.bin`);
    writeFileSync(body, request);
    return ['h2load', ...h2loadArgs(port, path, body, n, 4, 32, 1)];
  };
  const parts: Record<string, Part> = {
    sayhello: { label: 'unary SayHello (h2load -c 4 -m 32)', load: h2load(SAY_HELLO_CALL.path, SAY_HELLO_CALL.request) },
    health: { label: 'health Check (h2load -c 4 -m 32)', load: h2load(HEALTH_CHECK_CALL.path, HEALTH_CHECK_CALL.request) },
    bidi: {
      label: 'SayHelloBidi round trips (8 streams, grpc-go peer)',
      load: (port, n) => {
        const peer = streamPeer();
        return 'binary' in peer ? [peer.binary, 'load', '-addr', `127.0.0.1:${port}`, '-mode', 'bidi', '-streams', '8', '-messages', String(n)] : peer.missing;
      },
    },
  };
  const lines = [`Server allocations per call: ${values.server}, -workers 1, ${fmt(calls, 0)} calls a part; ${machine()}`, ''];
  lines.push('| load | bytes per call | of which the top function | load exit |', '| --- | ---: | --- | ---: |');
  const tops: string[] = [];
  try {
    for (const name of values.only.split(',')) {
      const part = parts[name];
      if (!part) throw new Error(`no part ${name} (known: ${Object.keys(parts).join(', ')})`);
      const port = await freePort();
      const inspectorPort = await freePort();
      const load = part.load(port, calls);
      if (typeof load === 'string') {
        lines.push(`| ${part.label} | skipped: ${load} | | |`);
        continue;
      }
      const argv = [node, ...SERVER_NODE_FLAGS, `--inspect=127.0.0.1:${inspectorPort}`, values.server, '-host', '127.0.0.1', '-port', String(port), '-workers', '1', '-access_log=true'];
      const server = await startServerProcess(argv, port, { ready: /Listening/ });
      try {
        const session = await inspect(inspectorPort);
        await session.send('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
        const r = spawnSync(load[0]!, load.slice(1), { encoding: 'utf8', timeout: 600_000 });
        const { profile } = await session.send<{ profile: { head: ProfileNode } }>('HeapProfiler.stopSampling');
        session.close();
        const { total, top } = byFunction(profile.head);
        const [first] = top;
        lines.push(`| ${part.label} | ${fmt(total / calls, 0)} | ${first ? `${first[0]}: ${fmt((first[1] / total) * 100)} %` : '-'} | ${r.status} |`);
        for (const [fn, bytes] of top.slice(0, Number(values.top))) tops.push(`- ${name}: ${fmt((bytes / total) * 100)} % ${fn}`);
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${[...lines, ...(tops.length ? ['', ...tops] : [])].join('\n')}\n`);
}

await main();
