// Health over plain HTTP, for what cannot speak gRPC: Kubernetes `httpGet` probes and cloud load-balancer
// health checks. GET (or HEAD) /healthz: 200 while the process serves; /readyz: 200, or 503 once shutdown
// has begun (health NOT_SERVING). The same answers over HTTP/1.1 (http1.ts) and HTTP/2 (refusals.ts).

export interface HealthAnswer {
  status: 200 | 503;
  body: Buffer;
}

const OK: HealthAnswer = { status: 200, body: Buffer.from('ok\n') };
const DRAINING: HealthAnswer = { status: 503, body: Buffer.from('draining\n') };

/** The answer to `method target`, when it asks for health; undefined otherwise. `draining`: shutdown has begun. */
export function healthAnswer(method: string, target: string, draining: () => boolean): HealthAnswer | undefined {
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  const query = target.indexOf('?');
  const path = query < 0 ? target : target.slice(0, query);
  if (path === '/healthz') return OK;
  if (path === '/readyz') return draining() ? DRAINING : OK;
  return undefined;
}
