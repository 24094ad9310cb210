// `pnpm k8s`: writes k8s/base/<service>/ (Deployment or CronJob, Services, ServiceAccount, HPA, PDB,
// ConfigMap) from the table below, so that probes, security context and rollout settings are decided
// once for every service. The output is committed; test/k8s checks that it is up to date and that every
// overlay renders, validates against the Kubernetes schemas and passes the policy checks.
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const check = process.argv.includes('--check');

export const IMAGE_REGISTRY = 'ghcr.io/aisle-platform';
export const VERSION = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
const GRPC = 50051;
const HEALTH = 50050;
const METRICS = 9464;

/** Per service: what differs. Everything else is the same for all. */
const services = [
  {
    name: 'ingest',
    component: 'ingestion',
    summary: 'validates clickstream and catalog input, stores it, republishes normalized events',
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
    replicas: { min: 2, max: 10 },
    config: { AISLE_INGEST_BATCH_SIZE: '500' },
  },
  {
    name: 'feature',
    component: 'features',
    summary: 'real-time user and item features',
    resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '768Mi' } },
    replicas: { min: 2, max: 10 },
    config: { AISLE_FEATURE_BATCH_SIZE: '500' },
  },
  {
    name: 'embedding-inference',
    component: 'inference',
    summary: 'ONNX models behind dynamic batchers; nearest-item retrieval',
    resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } },
    replicas: { min: 2, max: 8 },
    // Not ready until a model is loaded: readiness asks for the embedding service by name.
    readinessService: 'aisle.embedding.v1.EmbeddingService',
    // Loading and warming models can take minutes on a cold node.
    startupSeconds: 300,
    config: { AISLE_ORT_PROVIDERS: 'cpu', AISLE_EMBEDDING_MAX_BATCH: '16', AISLE_EMBEDDING_MAX_DELAY: '2ms' },
  },
  {
    name: 'ranking',
    component: 'api',
    summary: 'Recommend, Search, Rank, SimilarItems: the API backends call',
    resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2', memory: '1Gi' } },
    replicas: { min: 2, max: 20 },
    startupSeconds: 120,
    config: {
      AISLE_FEATURE_ADDR: `dns:///feature-headless:${GRPC}`,
      AISLE_EMBEDDING_ADDR: `dns:///embedding-inference-headless:${GRPC}`,
      AISLE_RANKING_DEADLINE: '300ms',
    },
  },
  {
    name: 'churn-prediction',
    component: 'churn',
    summary: 'churn risk per user; alerts as events',
    resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '768Mi' } },
    replicas: { min: 2, max: 4 },
    startupSeconds: 120,
    config: { AISLE_FEATURE_ADDR: `dns:///feature-headless:${GRPC}`, AISLE_CHURN_THRESHOLD: '0.7' },
  },
];

const labels = (name, component) => ({
  'app.kubernetes.io/name': name,
  'app.kubernetes.io/component': component,
  'app.kubernetes.io/part-of': 'aisle',
});
const selector = (name) => ({ 'app.kubernetes.io/name': name });

const containerSecurity = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
};
const podSecurity = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: 'RuntimeDefault' },
};
/** The store URL can carry credentials: always from a Secret. */
const storeEnv = { name: 'AISLE_STORE_URL', valueFrom: { secretKeyRef: { name: 'aisle-store', key: 'url' } } };

function container(s, extra = {}) {
  return {
    name: s.name,
    image: `${IMAGE_REGISTRY}/${s.name}:${VERSION}`,
    imagePullPolicy: 'IfNotPresent',
    envFrom: [{ configMapRef: { name: 'aisle-common' } }, { configMapRef: { name: `${s.name}-config` } }],
    env: [storeEnv],
    resources: s.resources,
    securityContext: containerSecurity,
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
    ...extra,
  };
}

function deployment(s) {
  const startupSeconds = s.startupSeconds ?? 60;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: s.name, labels: labels(s.name, s.component), annotations: { 'aisle.dev/summary': s.summary } },
    spec: {
      // No `replicas`: the HorizontalPodAutoscaler owns it (a fixed count would fight it on every apply).
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector(s.name) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: labels(s.name, s.component),
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(METRICS),
            'prometheus.io/path': '/metrics',
          },
        },
        spec: {
          serviceAccountName: s.name,
          automountServiceAccountToken: false,
          // Above AISLE_DRAIN_DELAY + AISLE_SHUTDOWN_TIMEOUT (5 s + 25 s in aisle-common), so the app
          // finishes its own drain before the kubelet's SIGKILL.
          terminationGracePeriodSeconds: 45,
          securityContext: podSecurity,
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selector(s.name) },
            },
            {
              maxSkew: 1,
              topologyKey: 'topology.kubernetes.io/zone',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selector(s.name) },
            },
          ],
          containers: [
            container(s, {
              ports: [
                { name: 'grpc', containerPort: GRPC, protocol: 'TCP' },
                { name: 'grpc-health', containerPort: HEALTH, protocol: 'TCP' },
                { name: 'metrics', containerPort: METRICS, protocol: 'TCP' },
              ],
              // Native gRPC probes against the plaintext health-only port (kubelet cannot do TLS).
              startupProbe: {
                grpc: { port: HEALTH },
                periodSeconds: 5,
                failureThreshold: Math.ceil(startupSeconds / 5),
              },
              readinessProbe: {
                grpc: { port: HEALTH, ...(s.readinessService ? { service: s.readinessService } : {}) },
                periodSeconds: 5,
                timeoutSeconds: 2,
                failureThreshold: 2,
              },
              livenessProbe: { grpc: { port: HEALTH }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
            }),
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  };
}

function services_(s) {
  const ports = [
    { name: 'grpc', port: GRPC, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
    { name: 'metrics', port: METRICS, targetPort: 'metrics', protocol: 'TCP' },
  ];
  return [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, labels: labels(s.name, s.component) },
      spec: { type: 'ClusterIP', selector: selector(s.name), ports },
    },
    {
      // For gRPC clients that balance per call (dns:/// + round_robin): one address per ready pod.
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `${s.name}-headless`, labels: labels(s.name, s.component) },
      spec: { clusterIP: 'None', selector: selector(s.name), ports: [ports[0]] },
    },
  ];
}

function autoscaling(s) {
  return [
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: s.name, labels: labels(s.name, s.component) },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: s.name },
        minReplicas: s.replicas.min,
        maxReplicas: s.replicas.max,
        metrics: [
          { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
        ],
        behavior: {
          scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
        },
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: s.name, labels: labels(s.name, s.component) },
      spec: { maxUnavailable: 1, selector: { matchLabels: selector(s.name) } },
    },
  ];
}

const serviceAccount = (name, component) => ({
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name, labels: labels(name, component) },
  automountServiceAccountToken: false,
});

const configMap = (name, component, data) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: `${name}-config`, labels: labels(name, component) },
  data,
});

function trainer() {
  const s = {
    name: 'trainer',
    component: 'training',
    resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4', memory: '8Gi' } },
  };
  return [
    serviceAccount(s.name, s.component),
    configMap(s.name, s.component, {
      AISLE_TRAINER_MODELS: 'sasrec,text_encoder,ranker,churn',
      AISLE_TRAINER_HELD_OUT_SHARE: '0.1',
      AISLE_METRICS_PORT: '-1',
    }),
    {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: s.name, labels: labels(s.name, s.component) },
      spec: {
        schedule: '17 3 * * *',
        timeZone: 'Etc/UTC',
        concurrencyPolicy: 'Forbid',
        startingDeadlineSeconds: 3600,
        successfulJobsHistoryLimit: 3,
        failedJobsHistoryLimit: 3,
        jobTemplate: {
          spec: {
            backoffLimit: 1,
            activeDeadlineSeconds: 4 * 3600,
            ttlSecondsAfterFinished: 7 * 24 * 3600,
            template: {
              metadata: { labels: labels(s.name, s.component) },
              spec: {
                serviceAccountName: s.name,
                automountServiceAccountToken: false,
                restartPolicy: 'Never',
                securityContext: podSecurity,
                containers: [container(s)],
                volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '1Gi' } }],
              },
            },
          },
        },
      },
    },
  ];
}

const HEADER = '# Generated by `pnpm k8s` from scripts/k8s.mjs: edit the script, not this file.\n';
const docs = (objects) => HEADER + objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');

const files = new Map();
for (const s of services) {
  const dir = join('k8s', 'base', s.name);
  files.set(join(dir, 'deployment.yaml'), docs([deployment(s)]));
  files.set(join(dir, 'service.yaml'), docs(services_(s)));
  files.set(join(dir, 'autoscaling.yaml'), docs(autoscaling(s)));
  files.set(
    join(dir, 'config.yaml'),
    docs([serviceAccount(s.name, s.component), configMap(s.name, s.component, s.config)]),
  );
  files.set(
    join(dir, 'kustomization.yaml'),
    HEADER +
      stringify({
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        resources: ['config.yaml', 'deployment.yaml', 'service.yaml', 'autoscaling.yaml'],
      }),
  );
}
files.set(join('k8s', 'base', 'trainer', 'cronjob.yaml'), docs(trainer()));
files.set(
  join('k8s', 'base', 'trainer', 'kustomization.yaml'),
  HEADER +
    stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: ['cronjob.yaml'] }),
);

let stale = 0;
for (const [rel, text] of files) {
  const path = join(root, rel);
  const current = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  if (current === text) continue;
  stale++;
  if (check) {
    process.stdout.write(`stale: ${rel}\n`);
  } else {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
    process.stdout.write(`wrote ${rel}\n`);
  }
}
if (check && stale > 0) {
  process.stdout.write('k8s/base is out of date: run `pnpm k8s`\n');
  process.exit(1);
}
process.stdout.write(`${files.size} files, ${stale} ${check ? 'stale' : 'written'}\n`);
