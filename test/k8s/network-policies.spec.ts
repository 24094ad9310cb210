/**
 * Issue #17: in every overlay that has network policies, everything is denied by default, in and out,
 * and each flow the architecture needs is allowed: checked by evaluating the rendered NetworkPolicies
 * the way a CNI does for every connection the rendered configuration dials (NATS, the store, OTLP, the
 * gRPC services, the tracing backend), plus DNS, NATS routes, callers, producers and Prometheus; and a
 * list of connections that must stay closed.
 */
import {
  AISLE_SERVICES,
  AISLE_WORKLOADS,
  describeIfRenderer,
  dialsOf,
  nameOf,
  podLabelsOf,
  podSpecOf,
  render,
  Rendered,
  resolveHost,
  selects,
  type K8s,
} from './render';

/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument */

jest.setTimeout(60_000);

interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}
/** One end of a connection: a pod (in the render or elsewhere in the cluster) or an address outside. */
interface Endpoint {
  id: string;
  namespace?: string;
  namespaceLabels?: Record<string, string>;
  labels?: Record<string, string>;
  ports?: ContainerPort[];
  ip?: string;
}
interface Flow {
  from: Endpoint;
  to: Endpoint;
  port: number;
  protocol: 'TCP' | 'UDP';
  why: string;
}

/** An address outside the cluster, standing for the external MongoDB or tracing backend. */
const OUTSIDE_IP = '203.0.113.7';

const namespaceOf = (name: string, labels: Record<string, string> = {}) => ({
  namespace: name,
  namespaceLabels: { 'kubernetes.io/metadata.name': name, ...labels },
});
const kubeDns: Endpoint = {
  id: 'kube-system/coredns',
  ...namespaceOf('kube-system'),
  labels: { 'k8s-app': 'kube-dns' },
  ports: [
    { name: 'dns', containerPort: 53, protocol: 'UDP' },
    { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
  ],
};
const callers: Endpoint = {
  id: 'a caller namespace',
  ...namespaceOf('shop-backend', { 'aisle.dev/client': 'true' }),
  labels: {},
};
const producers: Endpoint = {
  id: 'a producer namespace',
  ...namespaceOf('shop-events', { 'aisle.dev/producer': 'true' }),
  labels: {},
};
const monitoring: Endpoint = { id: 'prometheus', ...namespaceOf('monitoring'), labels: {} };
const consoleProxy: Endpoint = {
  id: "the console's authenticating proxy",
  ...namespaceOf('sso', { 'aisle.dev/console-proxy': 'true' }),
  labels: {},
};
const stranger: Endpoint = { id: 'an unlabelled namespace', ...namespaceOf('elsewhere'), labels: {} };
const outside = (): Endpoint => ({ id: `outside ${OUTSIDE_IP}`, ip: OUTSIDE_IP });

function ipInCidr(ip: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/');
  const n = (a: string) => a.split('.').reduce((acc, x) => acc * 256 + Number(x), 0);
  const mask = Number(bits) === 0 ? 0 : 2 ** 32 - 2 ** (32 - Number(bits));
  return (n(ip) & mask) >>> 0 === (n(base) & mask) >>> 0;
}

class PolicyWalker {
  readonly policies: K8s[];
  constructor(private readonly r: Rendered) {
    this.policies = r.byKind('NetworkPolicy');
  }

  pod(w: K8s): Endpoint {
    const ns = this.r.byKind('Namespace')[0];
    return {
      id: nameOf(w),
      namespace: this.r.namespace,
      namespaceLabels: { 'kubernetes.io/metadata.name': this.r.namespace, ...(ns?.metadata.labels ?? {}) },
      labels: podLabelsOf(w),
      ports: podSpecOf(w).containers.flatMap((c: K8s) => c.ports ?? []),
    };
  }

  private types(p: K8s): string[] {
    return p.spec.policyTypes ?? (p.spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);
  }
  private selecting(e: Endpoint, type: string): K8s[] {
    if (e.namespace !== this.r.namespace || !e.labels) return [];
    return this.policies.filter((p) => this.types(p).includes(type) && selects(p.spec.podSelector, e.labels!));
  }
  private peerMatches(peer: K8s, e: Endpoint): boolean {
    if (peer.ipBlock)
      return (
        e.ip !== undefined &&
        ipInCidr(e.ip, peer.ipBlock.cidr) &&
        !(peer.ipBlock.except ?? []).some((x: string) => ipInCidr(e.ip!, x))
      );
    if (!e.labels) return false;
    const nsOk = peer.namespaceSelector
      ? selects(peer.namespaceSelector, e.namespaceLabels ?? {})
      : e.namespace === this.r.namespace;
    return nsOk && (!peer.podSelector || selects(peer.podSelector, e.labels));
  }
  /** Whether a rule's ports admit the connection; named ports are the destination pod's. */
  private portMatches(ports: K8s[] | undefined, dest: Endpoint, port: number, protocol: string): boolean {
    if (!ports || ports.length === 0) return true;
    return ports.some((p) => {
      if ((p.protocol ?? 'TCP') !== protocol) return false;
      if (p.port === undefined) return true;
      if (typeof p.port === 'number') return port >= p.port && port <= (p.endPort ?? p.port);
      return (dest.ports ?? []).some(
        (c) => c.name === p.port && c.containerPort === port && (c.protocol ?? 'TCP') === protocol,
      );
    });
  }
  /**
   * Whether the policies selecting `self` in one direction admit the connection: none selecting it admits
   * everything; otherwise some rule must match the other end (`to` or `from` peers) and the port.
   */
  private admits(self: Endpoint, type: 'Egress' | 'Ingress', other: Endpoint, f: Flow): boolean {
    const [rules, peers] = type === 'Egress' ? (['egress', 'to'] as const) : (['ingress', 'from'] as const);
    const selecting = this.selecting(self, type);
    return (
      selecting.length === 0 ||
      selecting.some((p) =>
        (p.spec[rules] ?? []).some(
          (rule: K8s) =>
            (!rule[peers] ||
              rule[peers].length === 0 ||
              rule[peers].some((peer: K8s) => this.peerMatches(peer, other))) &&
            this.portMatches(rule.ports, f.to, f.port, f.protocol),
        ),
      )
    );
  }
  allowed(f: Flow): boolean {
    return this.admits(f.from, 'Egress', f.to, f) && this.admits(f.to, 'Ingress', f.from, f);
  }
}

/** The container port a Service port leads to on a pod. */
function targetPort(service: K8s, servicePort: number, pod: Endpoint): number | undefined {
  const sp = (service.spec.ports ?? []).find((p: K8s) => p.port === servicePort);
  if (!sp) return undefined;
  const t = sp.targetPort ?? sp.port;
  return typeof t === 'number' ? t : pod.ports?.find((c) => c.name === t)?.containerPort;
}

/** Every connection the overlay needs open. */
function neededFlows(r: Rendered, walker: PolicyWalker): Flow[] {
  const flows: Flow[] = [];
  const podOf = (name: string) => {
    const w = r.workloads.find((x) => x.metadata.name === name && x.kind !== 'Job');
    if (!w) throw new Error(`no workload ${name}`);
    return walker.pod(w);
  };
  for (const w of r.workloads) {
    const from = walker.pod(w);
    for (const protocol of ['UDP', 'TCP'] as const) flows.push({ from, to: kubeDns, port: 53, protocol, why: 'DNS' });
  }
  for (const d of dialsOf(r)) {
    const from = walker.pod(d.from);
    const { service, podName, external } = resolveHost(r, d.host);
    if (external) {
      flows.push({ from, to: outside(), port: d.port, protocol: 'TCP', why: `${d.what} (outside)` });
      continue;
    }
    for (const w of r.podsOf(service)) {
      if (podName && !podName.startsWith(`${w.metadata.name}-`)) continue;
      const to = walker.pod(w);
      flows.push({ from, to, port: targetPort(service, d.port, to)!, protocol: 'TCP', why: d.what });
    }
  }
  for (const name of ['ingest', 'ranking', 'churn-prediction', 'experiment'])
    flows.push({ from: callers, to: podOf(name), port: 50051, protocol: 'TCP', why: 'callers use the API' });
  flows.push({ from: producers, to: podOf('nats'), port: 4222, protocol: 'TCP', why: 'producers publish' });
  flows.push({ from: consoleProxy, to: podOf('console'), port: 8080, protocol: 'TCP', why: 'people use the console' });
  for (const name of AISLE_SERVICES)
    flows.push({ from: monitoring, to: podOf(name), port: 9464, protocol: 'TCP', why: 'Prometheus scrapes' });
  if ((r.get('StatefulSet', 'nats').spec.replicas ?? 1) > 1)
    flows.push({ from: podOf('nats'), to: podOf('nats'), port: 6222, protocol: 'TCP', why: 'NATS routes' });
  return flows;
}

/** Connections that must stay closed. */
function closedFlows(r: Rendered, walker: PolicyWalker): Flow[] {
  const pod = (name: string) => walker.pod(r.workloads.find((x) => x.metadata.name === name && x.kind !== 'Job'));
  const tcp = (from: Endpoint, to: Endpoint, port: number, why: string): Flow => ({
    from,
    to,
    port,
    protocol: 'TCP',
    why,
  });
  return [
    tcp(producers, pod('feature'), 50051, 'producers do not call services'),
    tcp(producers, pod('ranking'), 50051, 'producers are not callers'),
    tcp(callers, pod('feature'), 50051, 'feature is internal'),
    tcp(callers, pod('embedding-inference'), 50051, 'embedding-inference is internal'),
    tcp(callers, pod('nats'), 4222, 'callers are not producers'),
    tcp(stranger, pod('ranking'), 50051, 'unlabelled namespaces'),
    tcp(stranger, pod('nats'), 4222, 'unlabelled namespaces'),
    tcp(pod('ingest'), pod('feature'), 50051, 'ingest calls no service'),
    tcp(pod('feature'), pod('embedding-inference'), 50051, 'feature calls no service'),
    tcp(pod('trainer'), pod('ranking'), 50051, 'the trainer calls no service'),
    tcp(pod('otel-collector'), pod('nats'), 4222, 'the collector has no business on the bus'),
    tcp(callers, pod('console'), 8080, 'the console is reached through its proxy only'),
    tcp(stranger, pod('console'), 8080, 'the console is reached through its proxy only'),
    tcp(callers, pod('console'), 50051, "nobody calls the console's gRPC"),
    tcp(consoleProxy, pod('ranking'), 50051, 'the proxy reaches the console, nothing else'),
    tcp(pod('console'), outside(), 27017, 'the console opens no store'),
    ...AISLE_WORKLOADS.map((n) => tcp(pod(n), outside(), 443, 'no open egress')),
  ];
}

describeIfRenderer.each(['dev', 'prod'])('network policies of overlays/%s', (overlay) => {
  let r: Rendered;
  let walker: PolicyWalker;
  beforeAll(() => {
    r = new Rendered(render(`k8s/overlays/${overlay}`));
    walker = new PolicyWalker(r);
  });

  test('with policies, everything is denied by default in and out, then each needed flow allowed', () => {
    if (walker.policies.length === 0) {
      expect(overlay).toBe('dev'); // dev runs without policies, documented in its kustomization
      return;
    }
    const denyAll = walker.policies.find(
      (p) =>
        Object.keys(p.spec.podSelector ?? {}).length === 0 &&
        ['Ingress', 'Egress'].every((t) => (p.spec.policyTypes ?? []).includes(t)) &&
        (p.spec.ingress ?? []).length === 0 &&
        (p.spec.egress ?? []).length === 0,
    );
    expect(denyAll).toBeDefined();
    const flows = neededFlows(r, walker);
    // Each kind of flow the architecture has is among those checked.
    for (const what of [
      'DNS',
      'AISLE_NATS_URL',
      'AISLE_STORE_URL (outside)',
      'OTEL_EXPORTER_OTLP_ENDPOINT',
      'AISLE_FEATURE_ADDR',
      'AISLE_EMBEDDING_ADDR',
      'AISLE_RANKING_STATUS_URL',
      'OTEL_BACKEND_ENDPOINT (outside)',
    ])
      expect(flows.map((f) => f.why)).toContain(what);
    const blocked = flows
      .filter((f) => !walker.allowed(f))
      .map((f) => `${f.why}: ${f.from.id} -> ${f.to.id}:${f.port}/${f.protocol}`);
    expect(blocked).toEqual([]);
  });

  test('with policies, what must stay closed is closed', () => {
    if (walker.policies.length === 0) return;
    const open = closedFlows(r, walker)
      .filter((f) => walker.allowed(f))
      .map((f) => `${f.why}: ${f.from.id} -> ${f.to.id}:${f.port}`);
    expect(open).toEqual([]);
  });

  test('the walk itself: without the allow rules, the needed flows are refused', () => {
    if (walker.policies.length === 0) return;
    const denyOnly = new PolicyWalker(
      new Rendered(r.objects.filter((o) => o.kind !== 'NetworkPolicy' || o.metadata.name === 'default-deny')),
    );
    // Every needed flow starts or ends in the namespace, so default-deny alone refuses each of them.
    expect(neededFlows(r, denyOnly).filter((f) => denyOnly.allowed(f))).toEqual([]);
  });
});
