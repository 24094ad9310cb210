/**
 * Issues #5 and #17: every overlay renders, validates against the Kubernetes schemas, and passes the
 * policy checks a platform team would otherwise find in review or on a first install: probes, resources,
 * security context, pinned images, hash-named ConfigMaps, every dialled address present in the render,
 * JetStream limits within their volumes and memory, two GPU pods at least, dev requests that fit a small
 * node, and prod's per-workload identities. No cluster needed.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { checkCommonConfig, parseDuration, readConfig } from '@aisle/runtime';
import { parseAccessFile } from '../../services/console/src/access';
import { loadConsoleConfig } from '../../services/console/src/config';
import {
  AISLE_SERVICES,
  AISLE_WORKLOADS,
  CONFIG_SPECS as SPECS,
  describeIfRenderer,
  dialsOf,
  matches,
  nameOf,
  podLabelsOf,
  podSpecOf,
  quantity,
  render,
  Rendered,
  resolveHost,
  root,
  STORELESS,
  type K8s,
} from './render';

jest.setTimeout(120_000);

/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument */

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

/** Policy problems of one rendered overlay; an empty list passes. */
function policyProblems(r: Rendered): string[] {
  const problems: string[] = [];
  const common = r.generatedConfigMap('aisle-common') ?? {};
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
        // A fresh install has no model yet: readiness must not wait for one (the process's own status
        // says whether it can serve; named services that need a model report it separately).
        if (c.readinessProbe?.grpc?.service)
          problems.push(`${id}: readiness waits for ${c.readinessProbe.grpc.service}, which a fresh install never has`);
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
        if (
          /127\.0\.0\.1|sqlite:/.test(s.defaultText ?? '') &&
          !env[s.variable] &&
          !(s.variable === 'AISLE_STORE_URL' && STORELESS.includes(svc))
        )
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
  // Generated ConfigMaps carry a content hash, so an edit changes the pod template and rolls the pods.
  for (const cm of r.byKind('ConfigMap'))
    if (!/-[a-z0-9]{10}$/.test(String(cm.metadata.name)))
      problems.push(`${nameOf(cm)}: not generated with a content hash (edits would not roll its pods)`);
  problems.push(...dialProblems(r), ...jetStreamProblems(r), ...gpuProblems(r));
  return problems;
}

/** Every address a workload dials exists in the render: a Service with that port (and pod), or outside. */
function dialProblems(r: Rendered): string[] {
  const problems: string[] = [];
  for (const d of dialsOf(r)) {
    const where = `${nameOf(d.from)}: ${d.what} ${d.host}:${d.port}`;
    if (!d.host) {
      problems.push(`${where} names no host`);
      continue;
    }
    const { service, podName, external } = resolveHost(r, d.host);
    if (external) continue; // outside the cluster: the network-policy walk checks the way out
    if (!service) {
      problems.push(`${where}: no Service ${d.host} in the render`);
      continue;
    }
    if (!(service.spec.ports ?? []).some((p: K8s) => p.port === d.port))
      problems.push(`${where}: Service ${service.metadata.name} has no port ${d.port}`);
    const backing = r.podsOf(service);
    if (backing.length === 0) problems.push(`${where}: Service ${service.metadata.name} selects no pods`);
    if (podName) {
      const sts = backing.find((w) => w.kind === 'StatefulSet' && podName.startsWith(`${w.metadata.name}-`));
      const ordinal = Number(podName.slice((sts?.metadata.name.length ?? 0) + 1));
      if (!sts || sts.spec.serviceName !== service.metadata.name || !(ordinal < (sts.spec.replicas ?? 1)))
        problems.push(`${where}: no StatefulSet pod ${podName} behind ${service.metadata.name}`);
    }
  }
  return problems;
}

/** nats-server sizes: `8GB`, `512MB` (taken as powers of 1024, the larger reading). */
function natsBytes(v: string | undefined): number | undefined {
  const m = /^(\d+)\s*(K|KB|M|MB|G|GB|T|TB)?$/i.exec(v?.trim() ?? '');
  if (!m) return undefined;
  const exp = { '': 0, K: 1, M: 2, G: 3, T: 4 }[
    (m[2] ?? '').toUpperCase().replace('B', '') as '' | 'K' | 'M' | 'G' | 'T'
  ];
  return Number(m[1]) * 1024 ** exp;
}

/** JetStream may not claim more disk than its volume holds, nor more memory than its container has. */
function jetStreamProblems(r: Rendered): string[] {
  const problems: string[] = [];
  const nats = r.get('StatefulSet', 'nats');
  const conf = r.natsConfig()['nats.conf'] ?? '';
  const js = /jetstream\s*\{([^}]*)\}/.exec(conf)?.[1] ?? '';
  const setting = (k: string) => new RegExp(`${k}\\s*[:=]\\s*(\\S+)`).exec(js)?.[1];
  const file = natsBytes(setting('max_file_store'));
  const memory = natsBytes(setting('max_memory_store'));
  const volume = nats.spec.volumeClaimTemplates?.find((v: K8s) => v.metadata.name === 'data');
  const disk = quantity(volume?.spec.resources.requests.storage ?? '0');
  const limit = quantity(nats.spec.template.spec.containers[0].resources?.limits?.memory ?? '0');
  if (file === undefined) problems.push('nats.conf: jetstream.max_file_store not set');
  else if (file > 0.9 * disk)
    problems.push(
      `nats.conf: max_file_store ${setting('max_file_store')} does not fit 90% of the ${volume?.spec.resources.requests.storage} volume`,
    );
  if (memory === undefined) problems.push('nats.conf: jetstream.max_memory_store not set');
  else if (memory > 0.5 * limit)
    problems.push(
      `nats.conf: max_memory_store ${setting('max_memory_store')} is above half the container's memory limit`,
    );
  return problems;
}

/** The GPU service keeps serving through a node drain: two pods at least, one disruption at a time. */
function gpuProblems(r: Rendered): string[] {
  const problems: string[] = [];
  for (const d of r.byKind('Deployment')) {
    const gpu = podSpecOf(d).containers.some((c: K8s) => c.resources?.limits?.['nvidia.com/gpu']);
    if (!gpu) continue;
    const hpa = r.byKind('HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.name === d.metadata.name);
    const min = hpa?.spec.minReplicas ?? d.spec.replicas ?? 1;
    if (min < 2) problems.push(`${nameOf(d)}: a GPU service needs at least 2 replicas, has ${min}`);
    const pdb = r.byKind('PodDisruptionBudget').find((p) => matches(p.spec.selector.matchLabels, podLabelsOf(d)));
    if (!pdb || (pdb.spec.maxUnavailable ?? 1) >= min)
      problems.push(`${nameOf(d)}: its PodDisruptionBudget must keep one pod through a disruption`);
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
    // The faults issue #17 found on a first install.
    const emb = broken.get('Deployment', 'embedding-inference').spec.template.spec.containers[0];
    emb.readinessProbe.grpc.service = 'aisle.embedding.v1.EmbeddingService';
    emb.resources.limits['nvidia.com/gpu'] = '1';
    broken.get('HorizontalPodAutoscaler', 'embedding-inference').spec.minReplicas = 1;
    const collector = broken.generatedConfigMap('otel-collector-env')!;
    collector['OTEL_BACKEND_ENDPOINT'] = 'jaeger-collector:4317';
    const natsConfig = broken.natsConfig();
    natsConfig['nats.conf'] = natsConfig['nats.conf']!.replace(/max_file_store: \S+/, 'max_file_store: 50GB');
    broken.get('StatefulSet', 'nats').spec.volumeClaimTemplates[0].spec.resources.requests.storage = '10Gi';
    broken.byKind('ConfigMap').find((cm) => cm.metadata.name.startsWith('ranking-config-')).metadata.name =
      'ranking-config';
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
      'Deployment/embedding-inference: readiness waits for aisle.embedding.v1.EmbeddingService, which a fresh install never has',
      'Deployment/embedding-inference: a GPU service needs at least 2 replicas, has 1',
      'Deployment/otel-collector: OTEL_BACKEND_ENDPOINT jaeger-collector:4317: no Service jaeger-collector in the render',
      'nats.conf: max_file_store 50GB does not fit 90% of the 10Gi volume',
      'ConfigMap/ranking-config: not generated with a content hash (edits would not roll its pods)',
    ])
      expect(problems).toContain(expected);
    expect(problems.some((p) => p.includes('needs key uri of Secret aisle-store'))).toBe(true);
  });

  if (overlay === 'dev') {
    test('dev: in-cluster MongoDB replica set and Jaeger, security switches off', () => {
      const mongo = r.get('StatefulSet', 'mongodb');
      expect(mongo.spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--replSet', 'rs0']));
      const env = r.envOf(r.get('Deployment', 'ranking').spec.template.spec.containers[0]);
      expect(env['AISLE_STORE_URL']).toMatch(/^mongodb:\/\/mongodb-0\.mongodb-headless:27017\/aisle\?replicaSet=rs0$/);
      expect(env['AISLE_GRPC_TLS_CERT']).toBeUndefined();
      expect(r.byKind('NetworkPolicy')).toEqual([]);
      expect(r.generatedConfigMap('otel-collector-env')?.['OTEL_BACKEND_ENDPOINT']).toBe('jaeger:4317');
    });

    test('dev: what it requests fits a 2-CPU minikube or kind node beside its control plane', () => {
      // Every pod at its minimum count: Deployments at their HPA minimum, StatefulSets, Jobs, one trainer run.
      let cpu = 0;
      let memory = 0;
      for (const w of r.workloads) {
        const hpa = r.byKind('HorizontalPodAutoscaler').find((h) => h.spec.scaleTargetRef.name === w.metadata.name);
        const count = hpa?.spec.minReplicas ?? w.spec.replicas ?? 1;
        for (const c of podSpecOf(w).containers) {
          cpu += count * quantity(c.resources.requests.cpu);
          memory += count * quantity(c.resources.requests.memory);
        }
      }
      // A control plane requests ~0.75 CPU of the node's 2 (kube-apiserver 250m, controller-manager
      // 200m, etcd, scheduler, CoreDNS 100m each).
      expect(cpu).toBeLessThanOrEqual(1.0);
      expect(memory).toBeLessThanOrEqual(2.5 * 2 ** 30);
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
      expect(natsConf).toMatch(/^include \.\/authorization\.conf$/m);
      expect(r.natsConfig()['authorization.conf']).toMatch(/authorization \{/);
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
      expect(r.get('NetworkPolicy', 'default-deny').spec.podSelector).toEqual({});
      const featureFrom = r
        .get('NetworkPolicy', 'feature')
        .spec.ingress[0].from.map((f: K8s) => f.podSelector?.matchLabels?.['app.kubernetes.io/name']);
      expect(featureFrom.sort()).toEqual(['churn-prediction', 'console', 'ranking']);
      // ... and feature and embedding-inference answer only those callers' certificates (issue #18).
      expect(r.envOf(r.get('Deployment', 'feature').spec.template.spec.containers[0])).toMatchObject({
        AISLE_GRPC_ALLOWED_CLIENTS: 'ranking,churn-prediction,console',
      });
      expect(r.envOf(emb.containers[0])).toMatchObject({ AISLE_GRPC_ALLOWED_CLIENTS: 'ranking' });
    });

    test('prod: models are signed by the trainer and verified by every service that loads one', () => {
      const keys = r.byKind('Secret').find((x) => x.metadata.name.startsWith('aisle-model-keys'));
      const signing = r.byKind('Secret').find((x) => x.metadata.name.startsWith('aisle-model-signing-key'));
      for (const name of ['ranking', 'embedding-inference', 'churn-prediction']) {
        const c = r.get('Deployment', name).spec.template.spec.containers[0];
        expect([name, r.envOf(c)['AISLE_ENV']]).toEqual([name, 'production']);
        const ref = c.env.find((e: K8s) => e.name === 'AISLE_MODEL_PUBLIC_KEY')?.valueFrom?.secretKeyRef;
        expect([name, ref]).toEqual([name, { name: keys.metadata.name, key: 'AISLE_MODEL_PUBLIC_KEY' }]);
      }
      const trainer = podSpecOf(r.workloads.find((w) => w.kind === 'CronJob' && w.metadata.name === 'trainer'));
      expect(r.envOf(trainer.containers[0])['AISLE_MODEL_SIGNING_KEY_FILE']).toBe('/etc/aisle/model-signing/key.pem');
      const vol = trainer.volumes.find((v: K8s) => v.secret?.secretName === signing.metadata.name);
      expect(trainer.containers[0].volumeMounts).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: vol.name, mountPath: '/etc/aisle/model-signing' })]),
      );
      // Only the trainer holds the private key.
      for (const w of r.workloads)
        if (w.metadata.name !== 'trainer')
          expect([
            nameOf(w),
            (podSpecOf(w)?.volumes ?? []).some((v: K8s) => v.secret?.secretName === signing.metadata.name),
          ]).toEqual([nameOf(w), false]);
    });

    test('prod: the forget key is a Secret mounted read-only into every workload that keeps forget markers, no other', () => {
      const secret = r.byKind('Secret').find((x) => x.metadata.name.startsWith('aisle-forget-key'));
      expect(Object.keys(secret.data)).toEqual(['key']);
      // The workloads whose configuration reads AISLE_FORGET_KEY_FILE are those that keep forget markers.
      const keepers = AISLE_WORKLOADS.filter((n) =>
        Object.values(SPECS[n] ?? {}).some((s) => s.variable === 'AISLE_FORGET_KEY_FILE'),
      );
      expect(keepers.sort()).toEqual(['experiment', 'feature', 'ingest', 'trainer']);
      for (const w of r.workloads) {
        const pod = podSpecOf(w);
        const c = pod.containers[0];
        const vol = (pod.volumes ?? []).find((v: K8s) => v.secret?.secretName === secret.metadata.name);
        const file = r.envOf(c)['AISLE_FORGET_KEY_FILE'];
        if (!keepers.includes(w.metadata.name)) {
          expect([nameOf(w), vol, file]).toEqual([nameOf(w), undefined, undefined]);
          continue;
        }
        expect([nameOf(w), file]).toEqual([nameOf(w), '/etc/aisle/forget/key']);
        expect(c.volumeMounts).toEqual(
          expect.arrayContaining([{ name: vol.name, mountPath: '/etc/aisle/forget', readOnly: true }]),
        );
        expect([nameOf(w), vol.secret.defaultMode & 0o007]).toEqual([nameOf(w), 0]); // not world-readable
      }
      // A keeper without its key, or with the key unmounted, is refused by the services' own start check.
      const broken = new Rendered(structuredClone(r.objects));
      const feature = broken.get('Deployment', 'feature').spec.template.spec.containers[0];
      feature.env = feature.env.filter((e: K8s) => e.name !== 'AISLE_FORGET_KEY_FILE');
      const ingest = broken.get('Deployment', 'ingest').spec.template.spec.containers[0];
      ingest.volumeMounts = ingest.volumeMounts.filter((m: K8s) => m.name !== 'forget-key');
      const problems = policyProblems(broken);
      expect(
        problems.filter((p) => p.startsWith('Deployment/feature:') && p.includes('AISLE_FORGET_KEY_FILE is required')),
      ).toHaveLength(1);
      expect(
        problems.filter(
          (p) =>
            p.startsWith('Deployment/ingest:') &&
            p.includes('AISLE_FORGET_KEY_FILE names a file that does not exist: /etc/aisle/forget/key'),
        ),
      ).toHaveLength(1);
    });

    test('prod: the console serves its authenticating proxy only, with a login required and its grants mounted', () => {
      const pod = r.get('Deployment', 'console').spec.template.spec;
      const env = r.envOf(pod.containers[0]);
      expect(env).toMatchObject({
        AISLE_CONSOLE_AUTH: 'proxy',
        AISLE_CONSOLE_HTTP_HOST: '0.0.0.0',
        AISLE_CONSOLE_ACCESS_FILE: '/etc/aisle/console/access.json',
      });
      // What the console itself refuses to start with: no access file, no trusted proxies, open off loopback.
      expect(() => loadConsoleConfig(env)).not.toThrow();
      const access = r.byKind('Secret').find((x) => x.metadata.name.startsWith('aisle-console-access'));
      const vol = pod.volumes.find((v: K8s) => v.secret?.secretName === access.metadata.name);
      expect(pod.containers[0].volumeMounts).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: vol.name, mountPath: '/etc/aisle/console' })]),
      );
      expect(() =>
        parseAccessFile(
          JSON.parse(Buffer.from(String(access.data['access.json']).replace(/\s+/g, ''), 'base64').toString()),
        ),
      ).not.toThrow();
      // Its HTTP port: a Service port, and reachable from the proxy's namespace only.
      expect(r.get('Service', 'console').spec.ports).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'http', targetPort: 'http' })]),
      );
      const httpFrom = r
        .get('NetworkPolicy', 'console')
        .spec.ingress.filter((i: K8s) => i.ports.some((p: K8s) => p.port === 'http'))
        .flatMap((i: K8s) => i.from);
      expect(httpFrom).toEqual([{ namespaceSelector: { matchLabels: { 'aisle.dev/console-proxy': 'true' } } }]);
    });

    test('prod: each workload has its own certificate and its own NATS user, and nothing exports insecurely', () => {
      const users = r.byKind('Secret').find((x) => x.metadata.name.startsWith('aisle-nats-users'));
      const auth = r.natsConfig()['authorization.conf'] ?? '';
      for (const name of AISLE_WORKLOADS) {
        const w = r.workloads.find((x) => x.metadata.name === name && x.kind !== 'Job');
        const pod = podSpecOf(w);
        const c = pod.containers[0];
        const tls = pod.volumes.find((v: K8s) => v.name === 'tls');
        expect([name, tls?.secret?.secretName]).toEqual([name, `${name}-tls`]);
        const cert = r.byKind('Certificate').find((x) => x.spec.secretName === `${name}-tls`);
        expect(cert?.spec.commonName).toBe(name);
        expect(c.volumeMounts).toEqual(
          expect.arrayContaining([expect.objectContaining({ name: 'tls', mountPath: '/etc/aisle/tls' })]),
        );
        const env = r.envOf(c);
        expect(env['AISLE_NATS_USER']).toBe(name);
        const key = c.env.find((e: K8s) => e.name === 'AISLE_NATS_PASSWORD').valueFrom.secretKeyRef.key;
        expect(Object.keys(users.data)).toContain(key);
        // The NATS server knows this user, with this password variable.
        expect(auth).toContain(`user: ${name}\n      password: $${key}\n`);
      }
      // Every password variable authorization.conf reads is a key of the Secret the NATS servers load.
      for (const m of auth.matchAll(/password: \$(\w+)/g)) expect(Object.keys(users.data)).toContain(m[1]);
      const natsEnv = r.get('StatefulSet', 'nats').spec.template.spec.containers[0].envFrom;
      expect(natsEnv).toEqual(expect.arrayContaining([{ secretRef: { name: users.metadata.name } }]));
      // No exporter or client with TLS turned off (issue #18).
      for (const cm of r.byKind('ConfigMap'))
        for (const [k, v] of Object.entries(cm.data ?? {}))
          expect([cm.metadata.name, k, /insecure:\s*true/.test(String(v))]).toEqual([cm.metadata.name, k, false]);
    });
  }
});
