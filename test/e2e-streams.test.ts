// The stream scenarios of e2e/stream-scenarios.ts, locally: HAProxy as the client's sidecar (rendered from
// k8s/istio, its route timeout included, and a stream idle timeout) and as an ingress gateway terminating
// TLS, in front of the built server, with the built client. All scenarios at once, everything stopped in the
// end. The predictions come from the manifests; the tests then spell out the bounds on the raw output.
import { describe, expect, it } from 'vitest';
import { seconds, settleEach, settledScenarios } from './helpers/settled-scenarios.ts';
import { findHaproxy } from '../e2e/haproxy.ts';
import { ScenarioError } from '../e2e/scenarios.ts';
import { runStreamScenarioLocally, type StreamCallReport, type StreamScenarioReport } from '../e2e/stream-local.ts';
import { meshStreamScenarios, planStreamScenarios, predictStream, streamClientArgs, streamScenarios, type StreamScenario } from '../e2e/stream-scenarios.ts';
import { readVirtualService } from '../e2e/virtual-service.ts';

const haproxy = findHaproxy();

describe('the stream scenarios and their predictions', () => {
  const plans = planStreamScenarios();
  const plan = (name: string) => plans.find((p) => p.scenario.name === name)!;

  it('cover the issue: TLS terminated at a gateway, a route timeout, a delay, an idle timeout (local only)', () => {
    expect(streamScenarios.map((s) => s.name)).toEqual(['stream-gateway-tls', 'stream-timeout', 'stream-delay', 'stream-idle']);
    expect(meshStreamScenarios().map((s) => s.name)).toEqual(['stream-gateway-tls', 'stream-timeout', 'stream-delay']);
  });

  it('predict from k8s/istio/stream-timeout.yaml: a server stream cut after 5..25 of 100 messages, INTERNAL, exit 77; the bidi stream complete', () => {
    const [server, bidi] = plan('stream-timeout').predictions;
    expect(plan('stream-timeout').vs!.routes[0]!.timeoutMs).toBe(2000);
    expect(server).toMatchObject({ code: 13, exit: 77, messages: { lo: 5, hi: 25 }, latencyMs: { lo: 2000, hi: 5000 }, cutBy: 'route timeout', flag: 'UT' });
    expect(bidi).toMatchObject({ code: 0, exit: 0, messages: { lo: 30, hi: 30 }, cutBy: null });
  });

  it('predict the delay before the first message, the idle cuts, and the gateway stream', () => {
    expect(plan('stream-delay').predictions[0]).toMatchObject({ code: 0, firstMessageMinMs: 3000, flag: 'DI', messages: { lo: 5, hi: 5 } });
    expect(plan('stream-idle').predictions.map((p) => [p.code, p.messages.hi, p.cutBy])).toEqual([
      [13, 1, 'stream idle timeout'],
      [0, 8, null],
      [13, 1, 'stream idle timeout'],
    ]);
    const gateway = plan('stream-gateway-tls');
    expect(gateway.predictions[0]).toMatchObject({ code: 0, messages: { lo: 5, hi: 5 } });
    expect(streamClientArgs(gateway.scenario, gateway.scenario.calls[0]!).slice(0, 3)).toEqual(['-tls', '-server_host_override', 'grpc-helloworld.test.youtube.com']);
  });

  it('fails loudly when a manifest change would make a scenario vacuous (no timeout: nothing is cut)', () => {
    const scenario = streamScenarios.find((s) => s.name === 'stream-timeout')!;
    const noTimeout = readVirtualService(
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [grpc-helloworld-service]
  http:
    - route: [{destination: {host: grpc-helloworld-service}}]
`,
      'stream-timeout.yaml (timeout removed)',
    );
    expect(() => predictStream(scenario, scenario.calls[0]!, noTimeout)).toThrow(ScenarioError);
    expect(() => predictStream(scenario, scenario.calls[0]!, noTimeout)).toThrow(/is there to show "cut", but the prediction is OK after 100\.\.100 messages/);
    const tooShort: StreamScenario = { ...scenario, calls: [{ ...scenario.calls[0]!, timeoutS: 3 }] };
    expect(() => predictStream(tooShort, tooShort.calls[0]!, noTimeout)).toThrow(/-timeout 3 leaves no room for the stream/);
  });
});

describe.skipIf(!haproxy)('stream e2e, locally: HAProxy as sidecar and gateway in front of the built server', () => {
  const report = settledScenarios<StreamScenarioReport>('local stream e2e, all at once', () => settleEach(planStreamScenarios(), runStreamScenarioLocally), seconds, 60_000);
  const describeCall = (c: StreamCallReport) =>
    `${c.command}\n  exit ${c.run.code}\n  stdout ${c.run.stdout.slice(0, 600)}\n  stderr ${c.run.stderr.trim()}\n  server ${JSON.stringify(c.serverEntries)}`;
  const stream = (c: StreamCallReport) => c.outcome.stream!;

  it.each(streamScenarios.map((s): [string] => [s.name]))('%s: every stream shows what is predicted, client and server', (name) => {
    for (const c of report(name).calls) expect([...c.outcome.problems, ...c.serverProblems], describeCall(c)).toEqual([]);
  });

  it('stream-timeout: the 2 s route timeout cuts the 100-message server stream after 5..25 messages, INTERNAL, exit 77; the server saw CANCELLED', () => {
    const r = report('stream-timeout');
    const [cut, bidi] = r.calls;
    expect(cut!.run.code, describeCall(cut!)).toBe(77);
    expect(stream(cut!).status).toBe('INTERNAL');
    expect(cut!.outcome.received).toBeGreaterThanOrEqual(5);
    expect(cut!.outcome.received).toBeLessThanOrEqual(25);
    expect(stream(cut!).latency_ms).toBeGreaterThanOrEqual(2000);
    expect(stream(cut!).latency_ms).toBeLessThan(5000);
    expect(cut!.serverEntries.map((e) => e.status)).toEqual(['CANCELLED']);
    // the bidi stream lasts ~3 s, longer than the timeout, and is not cut: the timer starts at its half-close
    expect(bidi!.run.code, describeCall(bidi!)).toBe(0);
    expect(bidi!.outcome.received).toBe(30);
    expect(stream(bidi!).latency_ms).toBeGreaterThan(2000);
    expect(r.haproxyConfig).toMatch(/use_backend sidecar_route0_timeout_2000ms if \{ var\(txn\.route\) -m int 0 \}/);
  });

  it('stream-delay: all 5 messages, OK, the first no earlier than the 3 s delay; the server got the stream late', () => {
    const [c] = report('stream-delay').calls;
    expect(c!.run.code, describeCall(c!)).toBe(0);
    expect(c!.outcome.received).toBe(5);
    expect(stream(c!).messages![0]!.ms_since_start).toBeGreaterThanOrEqual(3000);
    expect(Date.parse(c!.serverEntries[0]!.time) - Date.parse(stream(c!).start)).toBeGreaterThanOrEqual(2950);
  });

  it('stream-idle: replies 2 s apart cut after the first (exit 77) at the 1 s idle timeout, with or without -keepalive PINGs; 0.3 s apart complete', () => {
    const [idle, flowing, pinged] = report('stream-idle').calls;
    for (const c of [idle!, pinged!]) {
      expect(c.run.code, describeCall(c)).toBe(77);
      expect(c.outcome.received).toBe(1);
      expect(stream(c).latency_ms).toBeGreaterThanOrEqual(1000); // one reply, then cut: before the second (at 2 s) came
    }
    expect(pinged!.command).toContain('-keepalive 0.3');
    expect(flowing!.run.code, describeCall(flowing!)).toBe(0);
    expect(flowing!.outcome.received).toBe(8);
    expect(stream(flowing!).latency_ms).toBeGreaterThan(2000); // twice the idle timeout, kept alive by the replies
  });

  it('stream-gateway-tls: TLS terminated at HAProxy (ALPN h2), plaintext h2 to the plaintext server, every message', () => {
    const r = report('stream-gateway-tls');
    const [c] = r.calls;
    expect(c!.run.code, describeCall(c!)).toBe(0);
    expect(c!.command).toContain('-tls -server_host_override grpc-helloworld.test.youtube.com');
    expect(c!.outcome.received).toBe(5);
    expect(c!.serverEntries[0]).toMatchObject({ status: 'OK', authority: 'grpc-helloworld.test.youtube.com' });
    expect(r.haproxyConfig).toMatch(/bind 127\.0\.0\.1:\d+ ssl crt '[^']+gateway\.pem' alpn h2/);
    expect(r.haproxyConfig).toMatch(/server s1 127\.0\.0\.1:\d+ proto h2/);
  });
});

if (!haproxy) console.warn(`e2e-streams.test.ts: haproxy not found: the local e2e is SKIPPED (.ci/run installs it)`);
