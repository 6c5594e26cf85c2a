// The local runner of the stream scenarios (e2e/stream-scenarios.ts): per scenario its own plaintext server
// (dist/server.js) and its own HAProxy, as the client's sidecar (rendered from the scenario's VirtualService,
// with the route timeout and, locally only, a stream idle timeout) or as an ingress gateway terminating TLS
// with the bundled test certificate. The built client runs each stream as a user would, with -json.
import { join } from 'node:path';
import { runClient, type RunResult } from '../test/helpers/spawn.ts';
import type { FrontendSpec } from './haproxy.ts';
import { logEntries, startHaproxyOnFreePorts, startServer } from './local.ts';
import { repoRoot } from './scenarios.ts';
import { checkStream, checkStreamServer, streamClientArgs, type StreamLogEntry, type StreamOutcome, type StreamPlan, type StreamPrediction } from './stream-scenarios.ts';

export interface StreamCallReport {
  prediction: StreamPrediction;
  command: string;
  run: RunResult;
  outcome: StreamOutcome;
  serverProblems: string[];
  serverEntries: StreamLogEntry[];
}

export interface StreamScenarioReport {
  plan: StreamPlan;
  calls: StreamCallReport[];
  haproxyConfig: string;
  ms: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runStreamScenarioLocally(plan: StreamPlan): Promise<StreamScenarioReport> {
  const started = performance.now();
  const { scenario, vs } = plan;
  const server = await startServer([]);
  let stop = () => Promise.resolve();
  try {
    const backend = { host: '127.0.0.1', port: server.port };
    const { haproxy, frontends } = await startHaproxyOnFreePorts(async (local): Promise<FrontendSpec[]> => [
      scenario.via === 'gateway'
        ? { name: 'gateway', listen: await local(), protocol: 'grpc', backend, terminateTls: { certFile: join(repoRoot, 'certs/server.pem'), keyFile: join(repoRoot, 'certs/server-key.pem') } }
        : {
            name: 'sidecar',
            listen: await local(),
            protocol: 'grpc',
            backend,
            ...(vs ? { virtualService: vs } : {}),
            ...(scenario.streamIdleTimeoutMs !== undefined ? { streamIdleTimeoutMs: scenario.streamIdleTimeoutMs } : {}),
          },
    ]);
    stop = haproxy.stop;
    const address = `${frontends[0]!.listen.host}:${frontends[0]!.listen.port}`;
    const calls: StreamCallReport[] = [];
    for (const p of plan.predictions) {
      const before = logEntries(server).length;
      const args = ['-server_addr', address, ...streamClientArgs(scenario, p.call)];
      const run = await runClient(args, { timeoutMs: 60_000 });
      await sleep(300); // the server logs a stream cut by the proxy once it sees the proxy's RST_STREAM
      const outcome = checkStream(p, { exitCode: run.code, stdout: run.stdout, stderr: run.stderr });
      const serverEntries = logEntries<StreamLogEntry>(server).slice(before);
      calls.push({ prediction: p, command: `client ${args.join(' ')}`, run, outcome, serverEntries, serverProblems: checkStreamServer(scenario, p, serverEntries, outcome) });
    }
    return { plan, calls, haproxyConfig: haproxy.config, ms: performance.now() - started };
  } finally {
    await Promise.all([stop(), server.stop()]);
  }
}
