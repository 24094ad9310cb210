/**
 * Issue #5: every overlay renders, validates against the Kubernetes schemas, and passes the policy
 * checks a platform team would otherwise find in review or in production. No cluster needed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkCommonConfig, parseDuration, readConfig, type ConfigSpec, type Env } from '@aisle/runtime';
import { parseAllDocuments } from 'yaml';
import { configSpec as churnSpec } from '../../services/churn-prediction/src/config';
import { configSpec as embeddingSpec } from '../../services/embedding-inference/src/config';
import { configSpec as featureSpec } from '../../services/feature/src/config';
import { configSpec as ingestSpec } from '../../services/ingest/src/config';
import { configSpec as rankingSpec } from '../../services/ranking/src/config';
import { configSpec as trainerSpec } from '../../services/trainer/src/config';

jest.setTimeout(120_000);

const root = join(__dirname, '..', '..');
const SPECS: Record<string, ConfigSpec> = {
  ingest: ingestSpec,
  feature: featureSpec,
  'embedding-inference': embeddingSpec,
  ranking: rankingSpec,
  'churn-prediction': churnSpec,
  trainer: trainerSpec,
};
const AISLE_SERVICES = ['ingest', 'feature', 'embedding-inference', 'ranking', 'churn-prediction'];

// Rendered manifests are walked as plain JSON of dozens of kinds; typing each access would add nothing
// the schema validation above does not already check.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any */
type K8s = any;

function which(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** kubectl kustomize, else a standalone kustomize; undefined (with a loud skip) when neither exists. */
const renderer: string[] | undefined = which('kubectl')
  ? ['kubectl', 'kustomize']
  : which('kustomize')
    ? ['kustomize', 'build']
    : undefined;
if (!renderer)
  process.stderr.write(
    '\n*** SKIPPED: manifest tests need kubectl (or kustomize) on PATH to render k8s/overlays ***\n\n',
  );
const describeIfRenderer = renderer ? describe : describe.skip;

function render(dir: string): K8s[] {
  const [bin, ...args] = renderer!;
  const r = spawnSync(bin!, [...args, join(root, dir)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} ${dir} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJSON())
    .filter(Boolean);
}

function validateSchemas(objects: K8s[]): Array<{ ref: string; error: string | null }> {
  // kustomize wraps long base64 values over lines, which YAML folds into spaces: undo that first.
  const clean = objects.map((o) =>
    o.kind === 'Secret' && o.data
      ? {
          ...o,
          data: Object.fromEntries(
            Object.entries(o.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\s+/g, '')]),
          ),
        }
      : o,
  );
  const r = spawnSync(process.execPath, [join(__dirname, 'validate-schemas.mjs')], {
    input: JSON.stringify(clean),
    encoding: 'utf8',
    cwd: join(root, 'test'),
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`schema validation crashed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Array<{ ref: string; error: string | null }>;
}

const podSpecOf = (o: K8s): K8s =>
  o.kind === 'CronJob'
    ? o.spec.jobTemplate.spec.template.spec
    : ['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(o.kind)
      ? o.spec.template.spec
      : undefined;
const podLabelsOf = (o: K8s): Record<string, string> =>
  (o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template.metadata?.labels : o.spec.template.metadata?.labels) ?? {};
const nameOf = (o: K8s) => `${o.kind}/${o.metadata.name}`;

class Rendered {
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
  /** Keys each Secret provides: its data, or the keys cert-manager writes for a Certificate. */
  secretKeys(name: string): Set<string> | undefined {
    const s = this.objects.find((o) => o.kind === 'Secret' && o.metadata.name === name);
    if (s) return new Set([...Object.keys(s.data ?? {}), ...Object.keys(s.stringData ?? {})]);
    const cert = this.objects.find((o) => o.kind === 'Certificate' && o.spec.secretName === name);
    return cert ? new Set(['tls.crt', 'tls.key', 'ca.crt']) : undefined;
  }
  configMapData(name: string): Record<string, string> | undefined {
    return this.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name)?.data;
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
}

/** Policy problems of one rendered overlay; an empty list passes. */
function policyProblems(r: Rendered): string[] {
  const problems: string[] = [];
  const common = r.configMapData('aisle-common') ?? {};
  const appDrainMs =
    (parseDuration(common['AISLE_DRAIN_DELAY'] ?? '0') ?? 0) +
    (parseDuration(common['AISLE_SHUTDOWN_TIMEOUT'] ?? '20s') ?? 20_000);

  for (const w of r.workloads) {
    const pod = podSpecOf(w);
    const id = nameOf(w);
    const mounts = new Map<string, string>();
    for (const c of [...(pod.containers ?? []), ...(pod.initContainers ?? [])]) {
      const where = `${id} container ${c.name}`;
      const image = String(c.image);
      const tag = image.includes('@') ? 'digest' : image.split('/').pop()!.split(':')[1];
      if (!tag || tag === 'latest') problems.push(`${where}: image ${image} needs a pinned tag (not latest)`);
      for (const kind of ['requests', 'limits'] as const)
        for (const res of ['cpu', 'memory'])
          if (!c.resources?.[kind]?.[res]) problems.push(`${where}: resources.${kind}.${res} missing`);
      const sc = c.securityContext ?? {};
      if (!(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot)) problems.push(`${where}: runAsNonRoot not set`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem not true`);
      if (sc.allowPrivilegeEscalation !== false) problems.push(`${where}: allowPrivilegeEscalation not false`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) problems.push(`${where}: capabilities not dropped`);
      for (const m of c.volumeMounts ?? []) {
        mounts.set(m.mountPath, m.name);
        if (
          !(pod.volumes ?? []).some((v: K8s) => v.name === m.name) &&
          !(w.spec.volumeClaimTemplates ?? []).some((v: K8s) => v.metadata.name === m.name)
        )
          problems.push(`${where}: mounts undefined volume ${m.name}`);
      }
      // Every referenced ConfigMap / Secret and key exists.
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef && !r.configMapData(from.configMapRef.name))
          problems.push(`${where}: envFrom ConfigMap ${from.configMapRef.name} does not exist`);
        if (from.secretRef && !r.secretKeys(from.secretRef.name))
          problems.push(`${where}: envFrom Secret ${from.secretRef.name} does not exist`);
      }
      for (const e of c.env ?? []) {
        const cm = e.valueFrom?.configMapKeyRef;
        const sec = e.valueFrom?.secretKeyRef;
        if (cm && r.configMapData(cm.name)?.[cm.key] === undefined)
          problems.push(`${where}: env ${e.name} needs key ${cm.key} of ConfigMap ${cm.name}`);
        if (sec && !r.secretKeys(sec.name)?.has(sec.key))
          problems.push(`${where}: env ${e.name} needs key ${sec.key} of Secret ${sec.name}`);
      }
    }
    for (const v of pod.volumes ?? []) {
      if (v.configMap && !r.configMapData(v.configMap.name))
        problems.push(`${id}: volume ${v.name} needs ConfigMap ${v.configMap.name}`);
      if (v.secret && !r.secretKeys(v.secret.secretName))
        problems.push(`${id}: volume ${v.name} needs Secret ${v.secret.secretName}`);
    }
    if (w.kind === 'Deployment' || w.kind === 'StatefulSet') {
      for (const c of pod.containers) {
        for (const p of ['readinessProbe', 'livenessProbe']) if (!c[p]) problems.push(`${id}: ${p} missing`);
      }
      if (w.kind === 'Deployment' && w.spec.strategy?.rollingUpdate?.maxUnavailable !== 0)
        problems.push(`${id}: rollingUpdate.maxUnavailable must be 0`);
    }

    // Aisle's own services: native gRPC probes, a startup probe, graceful shutdown, complete config.
    const svc = w.metadata.labels?.['app.kubernetes.io/name'] as string | undefined;
    if (svc && SPECS[svc]) {
      const c = pod.containers[0];
      if (w.kind === 'Deployment') {
        for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe'])
          if (!c[p]?.grpc) problems.push(`${id}: ${p} must be a native gRPC probe`);
        if (!c.ports?.some((p: K8s) => p.name === 'grpc')) problems.push(`${id}: no container port named grpc`);
        const grace = (pod.terminationGracePeriodSeconds ?? 30) * 1000;
        if (grace <= appDrainMs)
          problems.push(
            `${id}: terminationGracePeriodSeconds ${grace / 1000}s is not above the app's drain (${appDrainMs / 1000}s)`,
          );
      }
      const env = r.envOf(c);
      const spec = SPECS[svc];
      const known = new Set(Object.values(spec).map((s) => s.variable));
      for (const k of Object.keys(env))
        if ((k.startsWith('AISLE_') || k.startsWith('OTEL_')) && !known.has(k))
          problems.push(`${id}: ${k} is not a setting of ${svc} (typo?)`);
      // Defaults that only make sense on a laptop must be overridden in a cluster.
      for (const s of Object.values(spec))
        if (/127\.0\.0\.1|sqlite:/.test(s.defaultText ?? '') && !env[s.variable])
          problems.push(`${id}: ${s.variable} must be set (default ${s.defaultText} is local-only)`);
      try {
        const config = readConfig(spec, env) as unknown as Parameters<typeof checkCommonConfig>[0];
        // Files the config names must come from a mounted volume.
        checkCommonConfig(config, (path) => [...mounts.keys()].some((m) => path.startsWith(`${m}/`)));
      } catch (err) {
        problems.push(`${id}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  // Services select pods that exist, on ports those pods name.
  for (const s of r.byKind('Service')) {
    const sel = s.spec.selector ?? {};
    const targets = r.workloads.filter(
      (w) => w.kind !== 'CronJob' && w.kind !== 'Job' && Object.entries(sel).every(([k, v]) => podLabelsOf(w)[k] === v),
    );
    if (targets.length === 0) {
      problems.push(`${nameOf(s)}: selects no Deployment or StatefulSet`);
      continue;
    }
    const named = new Set(
      targets.flatMap((w) => podSpecOf(w).containers.flatMap((c: K8s) => (c.ports ?? []).map((p: K8s) => p.name))),
    );
    for (const p of s.spec.ports ?? [])
      if (typeof p.targetPort === 'string' && !named.has(p.targetPort))
        problems.push(`${nameOf(s)}: targetPort ${p.targetPort} is not a container port`);
    if (AISLE_SERVICES.includes(s.metadata.name) && !(s.spec.ports ?? []).some((p: K8s) => p.name === 'grpc'))
      problems.push(`${nameOf(s)}: no port named grpc`);
  }
  for (const h of r.byKind('HorizontalPodAutoscaler')) {
    const t = h.spec.scaleTargetRef;
    if (!r.objects.some((o) => o.kind === t.kind && o.metadata.name === t.name))
      problems.push(`${nameOf(h)}: scales missing ${t.kind}/${t.name}`);
  }
  for (const p of r.byKind('PodDisruptionBudget')) {
    const sel = p.spec.selector.matchLabels ?? {};
    if (!r.workloads.some((w) => Object.entries(sel).every(([k, v]) => podLabelsOf(w)[k] === v)))
      problems.push(`${nameOf(p)}: selects no pods`);
  }
  for (const svc of AISLE_SERVICES) {
    for (const kind of ['Deployment', 'Service', 'ServiceAccount', 'HorizontalPodAutoscaler', 'PodDisruptionBudget']) {
      if (!r.objects.some((o) => o.kind === kind && o.metadata.name === svc)) problems.push(`${svc}: no ${kind}`);
    }
  }
  return problems;
}

test('schema validation rejects an invalid object', () => {
  const [result] = validateSchemas([
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: { replicas: 'three', selector: {}, template: {} },
    },
  ]);
  expect(result?.error).toMatch(/replicas/);
});

test('k8s/base is what scripts/k8s.mjs generates', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'k8s.mjs'), '--check'], { encoding: 'utf8' });
  expect(r.stdout).toContain('0 stale');
});

describeIfRenderer.each(['dev', 'prod'])('overlays/%s', (overlay) => {
  let r: Rendered;
  beforeAll(() => {
    r = new Rendered(render(`k8s/overlays/${overlay}`));
  });

  test('every object is valid against the Kubernetes (and cert-manager) schemas', () => {
    const results = validateSchemas(r.objects);
    expect(results.length).toBe(r.objects.length);
    expect(results.filter((x) => x.error)).toEqual([]);
  });

  test('policy: probes, resources, security context, pinned images, selectors, config and secrets complete', () => {
    expect(policyProblems(r)).toEqual([]);
  });

  test('the trainer runs as a CronJob and NATS as a StatefulSet with persistent storage', () => {
    const cron = r.get('CronJob', 'trainer');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const nats = r.get('StatefulSet', 'nats');
    expect(nats.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBeDefined();
    expect(
      r.configMapData(nats.spec.template.spec.volumes.find((v: K8s) => v.name === 'config').configMap.name)?.[
        'nats.conf'
      ],
    ).toMatch(/jetstream/);
  });

  test('the policy checks catch the mistakes they are for', () => {
    const broken = new Rendered(structuredClone(r.objects));
    const ranking = broken.get('Deployment', 'ranking');
    const c = ranking.spec.template.spec.containers[0];
    delete c.readinessProbe;
    c.image = 'ghcr.io/aisle-platform/ranking:latest';
    c.securityContext.readOnlyRootFilesystem = false;
    delete c.resources.limits.memory;
    c.env.push({ name: 'AISLE_RANKNG_DEADLINE', value: '1s' });
    c.env.push({ name: 'AISLE_FEATURE_ADDR', value: '' });
    ranking.spec.template.spec.terminationGracePeriodSeconds = 10;
    ranking.spec.strategy.rollingUpdate.maxUnavailable = 1;
    c.env.find((e: K8s) => e.name === 'AISLE_STORE_URL').valueFrom.secretKeyRef.key = 'uri';
    broken.get('Service', 'feature').spec.selector = { 'app.kubernetes.io/name': 'featur' };
    const problems = policyProblems(broken);
    for (const expected of [
      'Deployment/ranking: readinessProbe missing',
      'Deployment/ranking container ranking: image ghcr.io/aisle-platform/ranking:latest needs a pinned tag (not latest)',
      'Deployment/ranking container ranking: readOnlyRootFilesystem not true',
      'Deployment/ranking container ranking: resources.limits.memory missing',
      'Deployment/ranking: AISLE_RANKNG_DEADLINE is not a setting of ranking (typo?)',
      'Deployment/ranking: AISLE_FEATURE_ADDR must be set (default 127.0.0.1:50052 is local-only)',
      "Deployment/ranking: terminationGracePeriodSeconds 10s is not above the app's drain (30s)",
      'Deployment/ranking: rollingUpdate.maxUnavailable must be 0',
      'Service/feature: selects no Deployment or StatefulSet',
    ])
      expect(problems).toContain(expected);
    expect(problems.some((p) => p.includes('needs key uri of Secret aisle-store'))).toBe(true);
  });

  if (overlay === 'dev') {
    test('dev: in-cluster MongoDB replica set, security switches off', () => {
      const mongo = r.get('StatefulSet', 'mongodb');
      expect(mongo.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--replSet', 'rs0']));
      const env = r.envOf(r.get('Deployment', 'ranking').spec.template.spec.containers[0]);
      expect(env['AISLE_STORE_URL']).toMatch(/^mongodb:\/\/mongodb-0\.mongodb-headless:27017\/aisle\?replicaSet=rs0$/);
      expect(env['AISLE_GRPC_TLS_CERT']).toBeUndefined();
      expect(r.byKind('NetworkPolicy')).toEqual([]);
    });
  } else {
    test('prod: 3 NATS replicas, external MongoDB, TLS and auth on, GPU inference, network policies, size limits', () => {
      expect(r.get('StatefulSet', 'nats').spec.replicas).toBe(3);
      const natsConf =
        r.configMapData(
          r.get('StatefulSet', 'nats').spec.template.spec.volumes.find((v: K8s) => v.name === 'config').configMap.name,
        )?.['nats.conf'] ?? '';
      expect(natsConf).toMatch(/cluster \{/);
      expect(natsConf).toMatch(/tls \{/);
      expect(natsConf).toMatch(/authorization \{/);
      expect(r.objects.some((o) => o.kind === 'StatefulSet' && o.metadata.name === 'mongodb')).toBe(false);
      const env = r.envOf(r.get('Deployment', 'ranking').spec.template.spec.containers[0]);
      expect(env['AISLE_NATS_STREAM_REPLICAS']).toBe('3');
      expect(env['AISLE_STORE_URL']).toMatch(/^mongodb(\+srv)?:\/\//);
      expect(env['AISLE_GRPC_TLS_CLIENT_CA']).toBeDefined();
      expect(env['AISLE_GRPC_CLIENT_TLS_CERT']).toBeDefined();
      expect(env['AISLE_NATS_PASSWORD']).toBeDefined();
      expect(Number(env['AISLE_GRPC_MAX_MESSAGE_BYTES'])).toBeLessThanOrEqual(4 * 1024 * 1024);
      const emb = r.get('Deployment', 'embedding-inference').spec.template.spec;
      expect(emb.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
      expect(emb.tolerations).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'nvidia.com/gpu' })]));
      expect(r.envOf(emb.containers[0])['AISLE_ORT_PROVIDERS']).toBe('cuda,cpu');
      expect(r.get('HorizontalPodAutoscaler', 'ranking').spec.minReplicas).toBeGreaterThanOrEqual(3);
      // Network policies: deny by default; feature reachable only from ranking and churn-prediction.
      expect(r.get('NetworkPolicy', 'default-deny-ingress').spec.podSelector).toEqual({});
      const featureFrom = r
        .get('NetworkPolicy', 'feature')
        .spec.ingress[0].from.map((f: K8s) => f.podSelector?.matchLabels?.['app.kubernetes.io/name']);
      expect(featureFrom.sort()).toEqual(['churn-prediction', 'ranking']);
    });
  }
});

describe('containers and compose', () => {
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

  test('Dockerfile: multi-stage, production dependencies only, non-root, no HEALTHCHECK', () => {
    const stages = [...dockerfile.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gm)].map((m) => m[2] ?? m[1]);
    expect(stages).toEqual(expect.arrayContaining(['build', 'runtime', 'runtime-gpu']));
    expect(dockerfile).toMatch(/deploy --prod/);
    expect(dockerfile).not.toMatch(/^HEALTHCHECK/m);
    // Every runtime stage switches to a non-root user before its command.
    for (const stage of dockerfile.split(/^FROM /m).filter((s) => /^\S+\s+AS\s+runtime/.test(s))) {
      const user = /^USER\s+(\S+)/m.exec(stage)?.[1];
      expect(user).toBeDefined();
      expect(user).not.toMatch(/^(root|0)(:|$)/);
    }
    for (const image of [...dockerfile.matchAll(/^FROM\s+([^\s$]+:[^\s]+)/gm)].map((m) => m[1]!))
      expect(image).not.toMatch(/:latest$/);
  });

  test('compose: every service is built from this Dockerfile and its environment passes its config check', () => {
    const compose = parseAllDocuments(readFileSync(join(root, 'deploy', 'compose.yaml'), 'utf8'), {
      merge: true,
    })[0]!.toJSON();
    for (const name of [...AISLE_SERVICES, 'trainer']) {
      const s = compose.services[name];
      expect(s?.build?.args?.SERVICE).toBe(name);
      expect(existsSync(join(root, 'services', name, 'package.json'))).toBe(true);
      expect(() => readConfig(SPECS[name]!, s.environment as Env)).not.toThrow();
      expect(s.environment['AISLE_STORE_URL']).toMatch(/^mongodb:\/\//);
    }
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining(['nats', 'mongodb', 'otel-collector', 'jaeger']),
    );
  });
});
