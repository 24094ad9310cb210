/**
 * Rendering the kustomize overlays and reading the result, for the manifest and network-policy tests.
 * No cluster needed: `kubectl kustomize` (or a standalone kustomize) on a copy of k8s/ in which the prod
 * secrets are made from their committed .example templates, as an operator would make them.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateModelKeys, type ConfigSpec, type Env } from '@aisle/runtime';
import { parseAllDocuments } from 'yaml';
import { configSpec as churnSpec } from '../../services/churn-prediction/src/config';
import { configSpec as consoleSpec } from '../../services/console/src/config';
import { configSpec as embeddingSpec } from '../../services/embedding-inference/src/config';
import { configSpec as experimentSpec } from '../../services/experiment/src/config';
import { configSpec as featureSpec } from '../../services/feature/src/config';
import { configSpec as ingestSpec } from '../../services/ingest/src/config';
import { configSpec as rankingSpec } from '../../services/ranking/src/config';
import { configSpec as trainerSpec } from '../../services/trainer/src/config';

export const root = join(__dirname, '..', '..');
export const AISLE_SERVICES = [
  'ingest',
  'feature',
  'embedding-inference',
  'ranking',
  'churn-prediction',
  'experiment',
  'console',
];
export const AISLE_WORKLOADS = [...AISLE_SERVICES, 'trainer'];
/** Workloads that open no store: their config has a store URL setting (every service's common config) they never read. */
export const STORELESS = ['console'];
/** Each workload's configuration, as its config.ts reads it. */
export const CONFIG_SPECS: Record<string, ConfigSpec> = {
  ingest: ingestSpec,
  feature: featureSpec,
  'embedding-inference': embeddingSpec,
  ranking: rankingSpec,
  'churn-prediction': churnSpec,
  experiment: experimentSpec,
  console: consoleSpec,
  trainer: trainerSpec,
};

// Rendered manifests are walked as plain JSON of dozens of kinds; typing each access would add nothing
// the schema validation does not already check.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any */
export type K8s = any;

function which(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** kubectl kustomize, else a standalone kustomize; undefined (with a loud skip) when neither exists. */
export const renderer: string[] | undefined = which('kubectl')
  ? ['kubectl', 'kustomize']
  : which('kustomize')
    ? ['kustomize', 'build']
    : undefined;
// In CI (CI set, as .ci/run does) a missing renderer fails the suite: a skipped manifest check there would
// pass without checking anything. Elsewhere the tests are skipped, loudly.
if (!renderer && process.env['CI'])
  throw new Error('the manifest tests need kubectl (or kustomize) on PATH to render k8s/overlays, and CI is set');
if (!renderer)
  process.stderr.write(
    '\n*** SKIPPED: manifest tests need kubectl (or kustomize) on PATH to render k8s/overlays ***\n\n',
  );
export const describeIfRenderer = renderer ? describe : describe.skip;

/** Renders k8s/<dir> from a copy of k8s/ in which each secrets/<file> is made from its <file>.example. */
export function render(dir: string): K8s[] {
  const [bin, ...args] = renderer!;
  const copy = mkdtempSync(join(tmpdir(), 'aisle-k8s-'));
  try {
    cpSync(join(root, 'k8s'), join(copy, 'k8s'), { recursive: true });
    const secrets = join(copy, 'k8s', 'overlays', 'prod', 'secrets');
    // As an operator would: copied, with every CHANGE_ME replaced (the services refuse placeholders).
    // The model keys as `pnpm aisle model-keys` makes them: a real pair, since the services parse the key.
    const keys = generateModelKeys();
    for (const f of existsSync(secrets) ? readdirSync(secrets) : [])
      if (f.endsWith('.example'))
        writeFileSync(
          join(secrets, f.replace(/\.example$/, '')),
          readFileSync(join(secrets, f), 'utf8')
            .replace(/^AISLE_MODEL_PUBLIC_KEY=CHANGE_ME$/m, `AISLE_MODEL_PUBLIC_KEY=${keys.publicKey}`)
            .replace(/CHANGE_ME/g, 'set-by-the-operator'),
        );
    if (existsSync(secrets)) writeFileSync(join(secrets, 'model-signing-key.pem'), keys.privateKeyPem);
    const r = spawnSync(bin!, [...args, join(copy, dir)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} ${dir} failed:\n${r.stderr}`);
    return parseAllDocuments(r.stdout)
      .map((d) => d.toJSON())
      .filter(Boolean);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

export const podSpecOf = (o: K8s): K8s =>
  o.kind === 'CronJob'
    ? o.spec.jobTemplate.spec.template.spec
    : ['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(o.kind)
      ? o.spec.template.spec
      : undefined;
export const podLabelsOf = (o: K8s): Record<string, string> =>
  (o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.metadata?.labels : o.spec.template.metadata?.labels) ?? {};
export const nameOf = (o: K8s) => `${o.kind}/${o.metadata.name}`;
export const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);

/** A label selector (matchLabels and matchExpressions) against a set of labels. */
export function selects(sel: K8s, labels: Record<string, string>): boolean {
  if (!matches(sel?.matchLabels, labels)) return false;
  return (sel?.matchExpressions ?? []).every((e: K8s) => {
    const v = labels[e.key];
    switch (e.operator) {
      case 'In':
        return v !== undefined && e.values.includes(v);
      case 'NotIn':
        return v === undefined || !e.values.includes(v);
      case 'Exists':
        return v !== undefined;
      case 'DoesNotExist':
        return v === undefined;
      default:
        throw new Error(`unknown selector operator ${e.operator}`);
    }
  });
}

/** Kubernetes quantities: CPU in cores, memory and storage in bytes. */
export function quantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a quantity: ${q}`);
  const unit = m[2] ?? '';
  const factor: Record<string, number> = {
    '': 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  return Number(m[1]) * (factor[unit] as number);
}

export class Rendered {
  constructor(readonly objects: K8s[]) {}
  byKind(kind: string): K8s[] {
    return this.objects.filter((o) => o.kind === kind);
  }
  get(kind: string, name: string): K8s {
    const o = this.objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) throw new Error(`${kind}/${name} not rendered`);
    return o;
  }
  get workloads(): K8s[] {
    return this.objects.filter((o) => podSpecOf(o));
  }
  get namespace(): string {
    return this.byKind('Namespace')[0]?.metadata.name ?? 'default';
  }
  /** Keys each Secret provides: its data, or the keys cert-manager writes for a Certificate. */
  secretKeys(name: string): Set<string> | undefined {
    const s = this.objects.find((o) => o.kind === 'Secret' && o.metadata.name === name);
    if (s) return new Set([...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})]);
    const cert = this.objects.find((o) => o.kind === 'Certificate' && o.spec.secretName === name);
    return cert ? new Set(['tls.crt', 'tls.key', 'ca.crt']) : undefined;
  }
  /** A ConfigMap's data by its rendered name (kustomize appends a content hash to generated ones). */
  configMapData(name: string): Record<string, string> | undefined {
    return this.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name)?.data;
  }
  /** A generated ConfigMap's data by the name it was generated under. */
  generatedConfigMap(name: string): Record<string, string> | undefined {
    return this.objects.find(
      (o) => o.kind === 'ConfigMap' && new RegExp(`^${name}-[a-z0-9]{10}$`).test(String(o.metadata.name)),
    )?.data;
  }
  secretValue(name: string, key: string): string | undefined {
    const s = this.objects.find((o) => o.kind === 'Secret' && o.metadata.name === name);
    const v = s?.data?.[key] as string | undefined;
    if (v !== undefined) return Buffer.from(v.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (this.objects.some((o) => o.kind === 'Certificate' && o.spec.secretName === name))
      return '(issued by cert-manager)';
    return undefined;
  }
  /** The environment a container starts with, resolved from its ConfigMaps and Secrets. */
  envOf(container: K8s): Env {
    const env: Record<string, string> = {};
    for (const from of container.envFrom ?? []) {
      if (from.configMapRef) Object.assign(env, this.configMapData(from.configMapRef.name) ?? {});
      if (from.secretRef)
        for (const k of this.secretKeys(from.secretRef.name) ?? [])
          env[k] = this.secretValue(from.secretRef.name, k) ?? '';
    }
    for (const e of container.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.configMapKeyRef)
        env[e.name] = this.configMapData(e.valueFrom.configMapKeyRef.name)?.[e.valueFrom.configMapKeyRef.key] ?? '';
      else if (e.valueFrom?.secretKeyRef)
        env[e.name] = this.secretValue(e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key) ?? '';
      else if (e.valueFrom?.fieldRef) env[e.name] = `(field ${e.valueFrom.fieldRef.fieldPath})`;
    }
    return env;
  }
  /** Container ports of the pods a Service selects, by name. */
  podsOf(service: K8s): K8s[] {
    return this.workloads.filter(
      (w) => w.kind !== 'CronJob' && w.kind !== 'Job' && matches(service.spec.selector, podLabelsOf(w)),
    );
  }
  /** The nats.conf the NATS StatefulSet mounts, and the other files of its ConfigMap. */
  natsConfig(): Record<string, string> {
    const nats = this.get('StatefulSet', 'nats');
    const cm = nats.spec.template.spec.volumes.find((v: K8s) => v.name === 'config').configMap.name;
    return this.configMapData(cm) ?? {};
  }
}

/**
 * Where a workload connects: `host:port` targets from its resolved environment (NATS, store, OTLP,
 * other services; the collector's backend). `what` names the setting.
 */
export interface Dial {
  from: K8s;
  what: string;
  host: string;
  port: number;
}

export function parseTarget(raw: string, defaultPort: number): Array<{ host: string; port: number }> {
  const value = raw.replace(/^dns:\/\/\//, '').replace(/^[a-z+]+:\/\//, '');
  // mongodb://user:pass@h1:27017,h2:27017/db?opts and plain host:port
  const hosts = value.split('@').pop()!.split(/[/?]/)[0]!;
  return hosts.split(',').map((hp) => {
    const [host = '', port] = hp.split(':');
    return { host, port: port ? Number(port) : defaultPort };
  });
}

export function dialsOf(r: Rendered): Dial[] {
  const out: Dial[] = [];
  for (const w of r.workloads) {
    const c = podSpecOf(w).containers[0];
    const env = r.envOf(c);
    const add = (what: string, raw: string | undefined, port: number) => {
      if (raw) for (const t of parseTarget(raw, port)) out.push({ from: w, what, ...t });
    };
    add('AISLE_NATS_URL', env['AISLE_NATS_URL'], 4222);
    add('AISLE_STORE_URL', env['AISLE_STORE_URL']?.startsWith('mongodb') ? env['AISLE_STORE_URL'] : undefined, 27017);
    const otlp = env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    add('OTEL_EXPORTER_OTLP_ENDPOINT', otlp, otlp?.startsWith('https') ? 443 : 80);
    for (const [k, v] of Object.entries(env)) if (/^AISLE_\w+_ADDR$/.test(k)) add(k, v, 50051);
    // The console reads each service's /status (an http:// URL on its metrics port).
    for (const [k, v] of Object.entries(env)) if (/^AISLE_\w+_STATUS_URL$/.test(k)) add(k, v, 80);
    add('OTEL_BACKEND_ENDPOINT', env['OTEL_BACKEND_ENDPOINT'], 4317);
  }
  return out;
}

/** The Service (and its pods) a cluster-internal host names; external hosts resolve to undefined. */
export function resolveHost(r: Rendered, host: string): { service: K8s; podName?: string; external: boolean } {
  const ns = r.namespace;
  const local = host.replace(new RegExp(`\\.${ns}\\.svc(\\.cluster\\.local)?$`), '');
  if (local.includes('.') && !/^[a-z0-9-]+\.[a-z0-9-]+$/.test(local)) return { service: undefined, external: true };
  const parts = local.split('.');
  if (parts.length === 1)
    return { service: r.objects.find((o) => o.kind === 'Service' && o.metadata.name === local), external: false };
  // <pod>.<headless service>: a StatefulSet pod.
  const [pod = '', svc = ''] = parts;
  const service = r.objects.find((o) => o.kind === 'Service' && o.metadata.name === svc);
  if (service) return { service, podName: pod, external: false };
  return { service: undefined, external: true };
}
