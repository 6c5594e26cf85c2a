// npm run attack: every attack of issue 15 (test/helpers/attacks.ts) at full scale (the counts the issue
// measured), each bounded in time, against a fresh `dist/server.js -workers 1` and, when the peer kit is
// there (../shared/peers or $PEERS_DIR, bin/go-server: grpc-go 1.33), against a fresh grpc-go server;
// one table. A measurement, not a test: it fails only when it could not run.
//
//   npm run attack                                   # everything: about 15 minutes on 2 cores
//   npm run attack -- --only ping-flood,rapid-reset  # some attacks
//   npm run attack -- --scale 0.1 --max-ms 5000      # smaller and shorter
//   npm run attack -- --targets ours                 # without grpc-go
//   npm run attack -- --targets ours,grpc-go,node-ref # and grpc-js on node:http2 (nghttp2), from the kit
//
// Columns, per server: peak RSS above idle (MB) / server CPU seconds from the attack's start until the
// attacker left / probes during the attack (a SayHello on a fresh connection by dist/client.cjs, one at a
// time: ok of run, slowest ms) / the probe after the attacker left and RSS settled (up to --settle-ms).
// Limits of issue 15: peak within +64 MB of idle (+128 MB for the 100k-stream attacks), probes answered.
//
// The helpers import src/h2/frames.ts, which uses a TypeScript parameter property: Node's type stripping
// does not take that, so this script transforms .ts itself (module.registerHooks) and loads the rest after.
import { registerHooks, stripTypeScriptTypes } from 'node:module';
import { parseArgs } from 'node:util';

const warn = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (String(warning).includes('stripTypeScriptTypes')) return;
  (warn as (w: string | Error, ...r: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
registerHooks({
  load(url, context, nextLoad) {
    const result = nextLoad(url, context);
    if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) return result;
    return { format: 'module', source: stripTypeScriptTypes(String(result.source), { mode: 'transform', sourceUrl: url }), shortCircuit: true };
  },
});

const { ATTACKS } = await import('../test/helpers/attacks.ts');
const { describe, measureAttack } = await import('../test/helpers/attack-harness.ts');
type Measurement = Awaited<ReturnType<typeof measureAttack>>;
const { dist, fmt, freePort, machine, node, peersDir, startServerProcess } = await import('./lib.ts');
const { SERVER_NODE_FLAGS } = await import('../src/server/v8-flags.ts');

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    scale: { type: 'string', default: '1' },
    'max-ms': { type: 'string', default: '20000' },
    'hold-ms': { type: 'string', default: '2000' },
    'settle-ms': { type: 'string', default: '8000' },
    targets: { type: 'string', default: 'ours,grpc-go' },
  },
});
const scale = Number(values.scale);
const maxMs = Number(values['max-ms']);
const only = values.only ? new Set(values.only.split(',')) : undefined;
const attacks = ATTACKS.filter((a) => !only || only.has(a.name));
if (only) for (const name of only) if (!attacks.some((a) => a.name === name)) throw new Error(`no attack named ${name}: ${ATTACKS.map((a) => a.name).join(', ')}`);
const log = (line: string) => process.stderr.write(`  ${line}\n`);

const peers = peersDir();
const targets: Array<{ name: string; argv: (port: number) => string[]; ready?: RegExp }> = [];
const wanted = new Set(values.targets.split(','));
// as the image runs it (its /server's V8 flags); ATTACK_SERVER_ARGS adds flags of the server's own
const serverArgs = (process.env.ATTACK_SERVER_ARGS ?? '').split(' ').filter(Boolean);
if (wanted.has('ours')) {
  targets.push({ name: 'ours', argv: (port) => [node, ...SERVER_NODE_FLAGS, dist('server'), '-port', String(port), '-host', '127.0.0.1', '-workers', '1', ...serverArgs], ready: /Listening/ });
}
if (wanted.has('grpc-go')) {
  if (peers) targets.push({ name: 'grpc-go', argv: (port) => [`${peers}/bin/go-server`, '-port', String(port)] });
  else process.stdout.write('grpc-go: not measured: no ../shared/peers/bin/go-server (run ../shared/peers/setup.sh, or set PEERS_DIR)\n\n');
}
// grpc-js on node:http2 (nghttp2's limits), the kit's naive Node server: only when asked for
if (wanted.has('node-ref') && peers) targets.push({ name: 'node-ref', argv: (port) => [node, `${peers}/node-ref/server.js`, '-port', String(port)] });

const results = new Map<string, Map<string, Measurement | string>>();
for (const attack of attacks) {
  const row = new Map<string, Measurement | string>();
  results.set(attack.name, row);
  for (const target of targets) {
    const port = await freePort();
    const server = await startServerProcess(target.argv(port), port, { ...(target.ready ? { ready: target.ready } : {}) });
    try {
      const m = await measureAttack({ name: target.name, pid: server.pid, port }, attack, {
        scale,
        maxMs,
        holdMs: Number(values['hold-ms']),
        probeTimeoutS: 10,
        settleMs: Number(values['settle-ms']),
        afterBoundMb: 32,
        log,
      });
      log(describe(m));
      row.set(target.name, m);
    } catch (err) {
      row.set(target.name, `failed: ${err instanceof Error ? err.message : String(err)}`);
      log(`${target.name} ${attack.name}: ${String(err)}`);
    } finally {
      server.child.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const probeCell = (m: Measurement) => {
  const ok = m.during.filter((p) => p.ok).length;
  const worst = Math.max(0, ...m.during.map((p) => p.latencyMs ?? p.wallMs));
  return `${ok}/${m.during.length} ${worst} ms`;
};
const cell = (m: Measurement | string | undefined, manyStreams: boolean) => {
  if (m === undefined) return '-';
  if (typeof m === 'string') return m;
  const bound = manyStreams ? 128 : 64;
  const over = m.peakDeltaMb > bound ? ' **over**' : '';
  const dead = m.alive ? '' : ' **DEAD**';
  return `${fmt(m.peakMb, 0)} (+${fmt(m.peakDeltaMb, 0)})${over} / ${fmt(m.cpuAttackS, 1)} / ${probeCell(m)} / ${m.after.ok ? 'ok' : 'FAIL'} ${m.after.latencyMs ?? m.after.wallMs} ms, +${fmt(m.afterDeltaMb, 0)} MB${dead}`;
};
const seen = (m: Measurement | string | undefined) => {
  if (!m || typeof m === 'string' || !m.report) return typeof m === 'object' ? `attacker failed: ${m.attackError}` : '-';
  const r = m.report;
  const closed = r.closedByServer ? `closed ${r.closedByServer}/${r.connections}${r.lastCloseMs !== undefined ? ` by ${(r.lastCloseMs / 1000).toFixed(1)} s` : ''}` : 'not closed';
  return `${r.units} ${r.unitName} in ${(r.ms / 1000).toFixed(1)} s, ${r.stoppedBy}; ${closed}${r.goaways.length ? `, GOAWAY ${r.goaways.join('/')}` : ''}${r.rstReceived ? `, ${r.rstReceived} RST` : ''}`;
};

const names = targets.map((t) => t.name);
const out: string[] = [];
out.push(`Attacks of issue 15, scale ${scale}, at most ${maxMs / 1000} s each (${machine()}).`);
out.push('Per server: peak RSS MB (above idle) / server CPU s while attacked / probes during: ok of run, slowest / probe after, RSS after above idle.');
out.push('');
out.push(`| attack | ${names.map((n) => `${n} peak (Δ idle) / CPU s / during / after`).join(' | ')} |`);
out.push(`|---|${names.map(() => '---').join('|')}|`);
for (const attack of attacks) {
  const row = results.get(attack.name)!;
  out.push(`| ${attack.name} | ${names.map((n) => cell(row.get(n), attack.manyStreams ?? false)).join(' | ')} |`);
}
out.push('');
out.push('What each attacker did and saw:');
out.push('');
out.push(`| attack | ${names.join(' | ')} |`);
out.push(`|---|${names.map(() => '---').join('|')}|`);
for (const attack of attacks) {
  const row = results.get(attack.name)!;
  out.push(`| ${attack.name} | ${names.map((n) => seen(row.get(n))).join(' | ')} |`);
}
out.push('');
const idle = names.map((n) => {
  const idles = [...results.values()].map((r) => r.get(n)).filter((m): m is Measurement => typeof m === 'object').map((m) => m.idleMb);
  return `${n} ${fmt(idles.reduce((a, b) => a + b, 0) / Math.max(1, idles.length), 0)} MB`;
});
out.push(`Idle RSS (mean over the fresh servers): ${idle.join(', ')}.`);
process.stdout.write(`${out.join('\n')}\n`);
