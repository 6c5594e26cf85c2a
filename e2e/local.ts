// The local runner of the fault-injection scenarios: for each scenario its own server(s) (dist/server.js)
// and its own HAProxy, rendered from the scenario's VirtualService, all on free loopback ports; the built
// client (dist/client.cjs) runs each call as a user would in a pod, with -json (and -expect_* where the
// table says so); the server's access log (stdout, one JSON line per RPC) says what reached it.
import { runClient, spawnServer, type RunResult, type SpawnedServer } from '../test/helpers/spawn.ts';
import { freePort, HaproxyBindError, startHaproxy, type FrontendSpec, type RunningHaproxy } from './haproxy.ts';
import {
  baselineCall,
  checkCall,
  checkServer,
  clientArgs,
  predict,
  type CallOutcome,
  type Port,
  type Prediction,
  type Scenario,
  type ServerLogEntry,
} from './scenarios.ts';
import { maxDelayMs, type VirtualServiceModel } from './virtual-service.ts';

export interface CallReport {
  prediction: Prediction;
  baseline: boolean;
  command: string;
  run: RunResult;
  outcome: CallOutcome;
  serverProblems: string[];
  serverEntries: ServerLogEntry[];
}

export interface ScenarioReport {
  scenario: Scenario;
  vs: VirtualServiceModel;
  calls: CallReport[];
  haproxyConfig: string;
  ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function logEntries(server: SpawnedServer): ServerLogEntry[] {
  return server
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ServerLogEntry);
}

interface Stack {
  servers: Partial<Record<Port, SpawnedServer>>;
  haproxy?: RunningHaproxy;
  /** port -> the HAProxy frontend address for the baseline and for the fault */
  address: { baseline: Partial<Record<Port, string>>; fault: Partial<Record<Port, string>> };
}

/** Servers still running, killed if this process exits before stopping them (no stray processes). */
const servers = new Set<SpawnedServer>();
process.on('exit', () => {
  for (const s of servers) s.child.kill('SIGKILL');
});

export async function startServer(args: string[]): Promise<SpawnedServer> {
  const server = await spawnServer(args);
  servers.add(server);
  void server.exited.then(() => servers.delete(server));
  return server;
}

async function startStack(ports: Set<Port>, vs: VirtualServiceModel, stack: Stack): Promise<void> {
  if (ports.has('grpc')) stack.servers.grpc = await startServer([]);
  if (ports.has('tls')) stack.servers.tls = await startServer(['-tls']);
  for (let attempt = 1; ; attempt++) {
    const frontends: FrontendSpec[] = [];
    const local = async () => ({ host: '127.0.0.1', port: await freePort() });
    const backend = (port: Port) => ({ host: '127.0.0.1', port: stack.servers[port]!.port });
    if (stack.servers.grpc) {
      frontends.push({ name: 'baseline', listen: await local(), protocol: 'grpc', backend: backend('grpc') });
      frontends.push({ name: 'fault', listen: await local(), protocol: 'grpc', backend: backend('grpc'), virtualService: vs });
    }
    if (stack.servers.tls) {
      // a port named tls: the baseline and the fault frontends are the same opaque TCP passthrough
      frontends.push({ name: 'tls', listen: await local(), protocol: 'tls', backend: backend('tls'), virtualService: vs });
    }
    try {
      stack.haproxy = await startHaproxy({ frontends });
    } catch (err) {
      if (err instanceof HaproxyBindError && attempt < 3) continue; // a free port was taken meanwhile
      throw err;
    }
    for (const f of frontends) {
      const where = `${f.listen.host}:${f.listen.port}`;
      if (f.name === 'baseline') stack.address.baseline.grpc = where;
      if (f.name === 'fault') stack.address.fault.grpc = where;
      if (f.name === 'tls') stack.address.baseline.tls = stack.address.fault.tls = where;
    }
    return;
  }
}

async function runCall(p: Prediction, address: string, server: SpawnedServer, vs: VirtualServiceModel | null, baseline: boolean): Promise<CallReport> {
  const before = logEntries(server).length;
  const args = ['-server_addr', address, ...clientArgs(p)];
  const started = Date.now();
  const run = await runClient(args, { timeoutMs: 60_000 });
  // A call the sidecar held or answered itself must not reach the server late: wait past the delay first.
  if (p.server === 'never-ok' || p.server === 'nothing') {
    const holdMs = vs ? maxDelayMs(vs) : 0;
    await sleep(Math.max(300, started + holdMs + 1000 - Date.now()));
  }
  const outcome = checkCall(p, { exitCode: run.code, stdout: run.stdout, stderr: run.stderr });
  const serverEntries = logEntries(server).slice(before);
  const serverProblems = checkServer(p, serverEntries, outcome.requests);
  return { prediction: p, baseline, command: `client ${args.join(' ')}`, run, outcome, serverProblems, serverEntries };
}

/** Runs one scenario end to end (baseline calls first, then its calls in order) and stops everything it started. */
export async function runScenarioLocally(scenario: Scenario, vs: VirtualServiceModel, predictions: Prediction[]): Promise<ScenarioReport> {
  const started = performance.now();
  const ports = new Set(scenario.calls.map((c) => c.port));
  const stack: Stack = { servers: {}, address: { baseline: {}, fault: {} } };
  const calls: CallReport[] = [];
  try {
    await startStack(ports, vs, stack);
    for (const port of ports) {
      const call = baselineCall(port);
      calls.push(await runCall(predict(scenario, call, null), stack.address.baseline[port]!, stack.servers[port]!, null, true));
    }
    for (const p of predictions) {
      calls.push(await runCall(p, stack.address.fault[p.call.port]!, stack.servers[p.call.port]!, vs, false));
    }
    return { scenario, vs, calls, haproxyConfig: stack.haproxy!.config, ms: performance.now() - started };
  } finally {
    await Promise.all([stack.haproxy?.stop(), ...Object.values(stack.servers).map((s) => s.stop())]);
  }
}
