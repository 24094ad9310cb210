// `pnpm k8s`: writes, from the tables below, what is the same for every Aisle workload and so is decided
// once: k8s/base/<service>/ (Deployment or CronJob, Services, ServiceAccount, HPA, PDB, a hash-named
// ConfigMap), k8s/components/identities (a certificate and a NATS user per workload),
// k8s/components/network-policies (default deny, then each flow of the architecture) and
// k8s/overlays/prod/authorization.conf (what each NATS user may publish and subscribe). The output is
// committed; test/k8s checks that it is up to date, that every overlay renders, validates against the
// Kubernetes schemas and passes the policy checks, that the policies allow exactly the flows the
// rendered configuration dials, and that nats-server enforces authorization.conf on the real services.
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
const NATS = 4222;
const OTLP_HTTP = 4318;
/** The web console's HTTP port. */
const CONSOLE_HTTP = 8080;
/** The namespace of the prod overlay, which the certificates' DNS names carry. */
const PROD_NAMESPACE = 'aisle';

/** Per service: what differs. Everything else is the same for all. */
const services = [
  {
    name: 'ingest',
    component: 'ingestion',
    summary: 'validates clickstream and catalog input, stores it, republishes normalized events',
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
    replicas: { min: 2, max: 10 },
    config: { AISLE_INGEST_BATCH_SIZE: '500' },
    // Who may open a gRPC connection: namespaces labelled aisle.dev/client=true (backends, producers),
    // and the console (health of every service; the data its pages show).
    callers: ['clients', 'console'],
  },
  {
    name: 'feature',
    component: 'features',
    summary: 'real-time user and item features',
    resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '768Mi' } },
    replicas: { min: 2, max: 10 },
    config: { AISLE_FEATURE_BATCH_SIZE: '500' },
    callers: ['ranking', 'churn-prediction', 'console'],
  },
  {
    name: 'embedding-inference',
    component: 'inference',
    summary: 'ONNX models behind dynamic batchers; nearest-item retrieval',
    resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } },
    replicas: { min: 2, max: 8 },
    // Ready without a model: until the trainer publishes one it answers FAILED_PRECONDITION (ranking then
    // serves popularity) and says so in its health details; the named health service
    // aisle.embedding.v1.EmbeddingService stays NOT_SERVING until then. A readiness probe on that name
    // would keep a fresh install from ever becoming Ready.
    // Loading and warming models can take minutes on a cold node.
    startupSeconds: 300,
    config: { AISLE_ORT_PROVIDERS: 'cpu', AISLE_EMBEDDING_MAX_BATCH: '16', AISLE_EMBEDDING_MAX_DELAY: '2ms' },
    callers: ['ranking', 'console'],
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
      AISLE_CHURN_ADDR: `dns:///churn-prediction-headless:${GRPC}`,
      AISLE_RANKING_DEADLINE: '300ms',
      // 64 MB young-generation semi-spaces (with the default 16 MB, scavenges were a third of ranking's CPU
      // in a profile under load; the A/Bs disagree on the gain, docs/benchmarks.md). As deploy/local's
      // RANKING_NODE_OPTIONS.
      NODE_OPTIONS: '--max-semi-space-size=64',
    },
    callers: ['clients', 'console'],
  },
  {
    name: 'churn-prediction',
    component: 'churn',
    summary: 'churn risk per user; alerts as events',
    resources: { requests: { cpu: '250m', memory: '384Mi' }, limits: { cpu: '1', memory: '768Mi' } },
    replicas: { min: 2, max: 4 },
    startupSeconds: 120,
    config: { AISLE_FEATURE_ADDR: `dns:///feature-headless:${GRPC}`, AISLE_CHURN_THRESHOLD: '0.7' },
    // Ranking asks for churn risk (experiment arms with a retention rule).
    callers: ['clients', 'ranking', 'console'],
  },
  {
    name: 'experiment',
    component: 'experiments',
    summary: 'online experiments: definitions, impressions joined to outcomes, results and guardrails',
    resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '768Mi' } },
    // One replica: its consumers are durable and its guardrails act in one place (see its README).
    replicas: { min: 1, max: 1 },
    config: { AISLE_EXPERIMENT_ANALYSIS_INTERVAL: '30s' },
    // Platform teams manage experiments (the console too); the trainer puts candidates into them.
    callers: ['clients', 'trainer', 'console'],
  },
  {
    name: 'console',
    component: 'console',
    summary: 'the web console: overview, dead letters, shoppers, search, models and experiments',
    resources: { requests: { cpu: '100m', memory: '192Mi' }, limits: { cpu: '500m', memory: '512Mi' } },
    // For people, not traffic: one pod, a second during a rollout (sessions are signed cookies).
    replicas: { min: 1, max: 2 },
    http: CONSOLE_HTTP,
    // It opens no store (streams, services and the model bucket only): no store URL, no way to the store.
    store: false,
    config: {
      // Loopback and no login in the base: reach it with `kubectl port-forward deploy/console 8080`. The
      // prod overlay serves it to an authenticating proxy instead (AISLE_CONSOLE_AUTH=proxy).
      AISLE_CONSOLE_HTTP_HOST: '127.0.0.1',
      AISLE_CONSOLE_HTTP_PORT: String(CONSOLE_HTTP),
      AISLE_INGEST_ADDR: `dns:///ingest-headless:${GRPC}`,
      AISLE_FEATURE_ADDR: `dns:///feature-headless:${GRPC}`,
      AISLE_EMBEDDING_ADDR: `dns:///embedding-inference-headless:${GRPC}`,
      AISLE_RANKING_ADDR: `dns:///ranking-headless:${GRPC}`,
      AISLE_CHURN_ADDR: `dns:///churn-prediction-headless:${GRPC}`,
      AISLE_EXPERIMENT_ADDR: `dns:///experiment-headless:${GRPC}`,
      // Loaded model versions: one pod of each service answers (through its Service).
      AISLE_INGEST_STATUS_URL: `http://ingest:${METRICS}/status`,
      AISLE_FEATURE_STATUS_URL: `http://feature:${METRICS}/status`,
      AISLE_EMBEDDING_STATUS_URL: `http://embedding-inference:${METRICS}/status`,
      AISLE_RANKING_STATUS_URL: `http://ranking:${METRICS}/status`,
      AISLE_CHURN_STATUS_URL: `http://churn-prediction:${METRICS}/status`,
      AISLE_EXPERIMENT_STATUS_URL: `http://experiment:${METRICS}/status`,
    },
    // Nobody calls its gRPC port (health only, for the kubelet); people reach its HTTP port through the
    // overlay's authenticating proxy, in a namespace labelled aisle.dev/console-proxy=true.
    callers: [],
  },
];
const trainerSpec = {
  name: 'trainer',
  component: 'training',
  resources: { requests: { cpu: '2', memory: '4Gi' }, limits: { cpu: '4', memory: '8Gi' } },
  config: {
    AISLE_TRAINER_MODELS: 'sasrec,text_encoder,ranker,churn,session',
    AISLE_TRAINER_HELD_OUT_SHARE: '0.1',
    AISLE_EXPERIMENT_ADDR: `dns:///experiment-headless:${GRPC}`,
    AISLE_METRICS_PORT: '-1',
  },
};
/** Every workload that runs Aisle code. */
const workloads = [...services.map((s) => ({ ...s, kind: 'Deployment' })), { ...trainerSpec, kind: 'CronJob' }];

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
    env: s.store === false ? [] : [storeEnv],
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
                ...(s.http ? [{ name: 'http', containerPort: s.http, protocol: 'TCP' }] : []),
              ],
              // Native gRPC probes against the plaintext health-only port (kubelet cannot do TLS).
              startupProbe: {
                grpc: { port: HEALTH },
                periodSeconds: 5,
                failureThreshold: Math.ceil(startupSeconds / 5),
              },
              readinessProbe: { grpc: { port: HEALTH }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
              // "liveness" stays SERVING while the process runs; "" turns NOT_SERVING when a dependency is
              // lost, which should take the pod out of rotation, not restart it.
              livenessProbe: {
                grpc: { port: HEALTH, service: 'liveness' },
                periodSeconds: 10,
                timeoutSeconds: 3,
                failureThreshold: 3,
              },
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
    ...(s.http ? [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP', appProtocol: 'http' }] : []),
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

/** Kustomization of one workload: its ConfigMap generated with a content hash, so edits roll the pods. */
const workloadKustomization = (s, resources) => ({
  apiVersion: 'kustomize.config.k8s.io/v1beta1',
  kind: 'Kustomization',
  resources,
  configMapGenerator: [
    {
      name: `${s.name}-config`,
      literals: Object.entries(s.config).map(([k, v]) => `${k}=${v}`),
      options: { labels: labels(s.name, s.component) },
    },
  ],
});

function trainer() {
  const s = trainerSpec;
  return [
    serviceAccount(s.name, s.component),
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

// ---- identities: one certificate and one NATS user per workload ----

/** NATS password variable of a user: in the Secret aisle-nats-users and in the NATS server's environment. */
export const natsPasswordVariable = (user) => `${user.toUpperCase().replace(/-/g, '_')}_PASSWORD`;
const TLS_DIR = '/etc/aisle/tls';

function certificate(w) {
  const dnsNames =
    w.kind === 'Deployment'
      ? [w.name, `${w.name}-headless`].flatMap((n) => [
          n,
          `${n}.${PROD_NAMESPACE}.svc`,
          `${n}.${PROD_NAMESPACE}.svc.cluster.local`,
        ])
      : undefined;
  return {
    apiVersion: 'cert-manager.io/v1',
    kind: 'Certificate',
    metadata: { name: `${w.name}-tls`, labels: labels(w.name, w.component) },
    spec: {
      secretName: `${w.name}-tls`,
      // The identity a server sees when this workload calls it (mTLS): the subject's common name.
      commonName: w.name,
      ...(dnsNames ? { dnsNames } : {}),
      duration: '2160h',
      renewBefore: '360h',
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      usages: w.kind === 'Deployment' ? ['server auth', 'client auth'] : ['client auth'],
      issuerRef: { kind: 'ClusterIssuer', name: 'aisle-ca' },
    },
  };
}

/** JSON patch giving one workload its certificate and its NATS user. */
function identityPatch(w) {
  const pod = w.kind === 'CronJob' ? '/spec/jobTemplate/spec/template/spec' : '/spec/template/spec';
  return [
    {
      op: 'add',
      path: `${pod}/volumes/-`,
      value: { name: 'tls', secret: { secretName: `${w.name}-tls` } },
    },
    {
      op: 'add',
      path: `${pod}/containers/0/volumeMounts/-`,
      value: { name: 'tls', mountPath: TLS_DIR, readOnly: true },
    },
    { op: 'add', path: `${pod}/containers/0/env/-`, value: { name: 'AISLE_NATS_USER', value: w.name } },
    {
      op: 'add',
      path: `${pod}/containers/0/env/-`,
      value: {
        name: 'AISLE_NATS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'aisle-nats-users', key: natsPasswordVariable(w.name) } },
      },
    },
  ];
}

function identitiesKustomization() {
  return {
    apiVersion: 'kustomize.config.k8s.io/v1alpha1',
    kind: 'Component',
    resources: ['certificates.yaml'],
    configMapGenerator: [
      {
        name: 'aisle-common',
        behavior: 'merge',
        literals: [
          // NATS over TLS, verified against the CA that issued every certificate here.
          `AISLE_NATS_TLS_CA=${TLS_DIR}/ca.crt`,
          // gRPC served with TLS; callers must present a certificate from the same CA (mTLS).
          `AISLE_GRPC_TLS_CERT=${TLS_DIR}/tls.crt`,
          `AISLE_GRPC_TLS_KEY=${TLS_DIR}/tls.key`,
          `AISLE_GRPC_TLS_CLIENT_CA=${TLS_DIR}/ca.crt`,
          // Calls between services present the caller's own certificate.
          `AISLE_GRPC_CLIENT_TLS_CA=${TLS_DIR}/ca.crt`,
          `AISLE_GRPC_CLIENT_TLS_CERT=${TLS_DIR}/tls.crt`,
          `AISLE_GRPC_CLIENT_TLS_KEY=${TLS_DIR}/tls.key`,
        ],
      },
    ],
    patches: workloads.map((w) => ({
      target: { kind: w.kind, name: w.name },
      patch: JSON.stringify(identityPatch(w)),
    })),
  };
}

// ---- network policies: deny everything, then allow each flow ----

const pods = (...names) => names.map((n) => ({ podSelector: { matchLabels: selector(n) } }));
const namespaceLabelled = (key, value) => ({ namespaceSelector: { matchLabels: { [key]: value } } });
const tcp = (port) => ({ protocol: 'TCP', port });
const policy = (name, spec) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, labels: { 'app.kubernetes.io/part-of': 'aisle' } },
  spec,
});
const monitoring = (port) => ({
  from: [namespaceLabelled('kubernetes.io/metadata.name', 'monitoring')],
  ports: [tcp(port)],
});
const aisleWorkloads = workloads.map((w) => w.name);

function networkPolicies() {
  const out = [
    policy('default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] }),
    // Name resolution for every pod (CoreDNS / kube-dns in kube-system).
    policy('allow-dns', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    }),
  ];
  for (const w of workloads) {
    const s = services.find((x) => x.name === w.name);
    // Outgoing: NATS, the collector, and the gRPC services this one calls. The store is the overlay's
    // (in-cluster or external), and so is its egress rule.
    const dials = services.filter((d) => d.callers.includes(w.name)).map((d) => d.name);
    const egress = [
      { to: pods('nats'), ports: [tcp(NATS)] },
      { to: pods('otel-collector'), ports: [tcp(OTLP_HTTP)] },
      // The console also reads each service's /status on its metrics port.
      ...dials.map((d) => ({ to: pods(d), ports: w.name === 'console' ? [tcp(GRPC), tcp(METRICS)] : [tcp(GRPC)] })),
    ];
    // (A rule with an empty `from` would admit everyone: a service nobody calls gets no gRPC rule.)
    const ingress = s
      ? [
          ...(s.callers.length > 0
            ? [
                {
                  from: s.callers.map((c) =>
                    c === 'clients' ? namespaceLabelled('aisle.dev/client', 'true') : pods(c)[0],
                  ),
                  ports: [tcp('grpc')],
                },
              ]
            : []),
          // Prometheus; and the console, which reads each service's loaded model versions on /status.
          s.name === 'console'
            ? monitoring('metrics')
            : { ...monitoring('metrics'), from: [...monitoring('metrics').from, ...pods('console')] },
          ...(s.http ? [{ from: [namespaceLabelled('aisle.dev/console-proxy', 'true')], ports: [tcp('http')] }] : []),
        ]
      : [];
    out.push(
      policy(w.name, {
        podSelector: { matchLabels: selector(w.name) },
        policyTypes: s ? ['Ingress', 'Egress'] : ['Egress'],
        ...(s ? { ingress } : {}),
        egress,
      }),
    );
  }
  out.push(
    policy('nats', {
      podSelector: { matchLabels: selector('nats') },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        // Producers live in namespaces labelled aisle.dev/producer=true.
        { from: [...pods(...aisleWorkloads), namespaceLabelled('aisle.dev/producer', 'true')], ports: [tcp('client')] },
        { from: pods('nats'), ports: [tcp('cluster')] },
        monitoring('monitor'),
      ],
      // Cluster routes to the other NATS servers.
      egress: [{ to: pods('nats'), ports: [tcp(6222)] }],
    }),
    policy('otel-collector', {
      podSelector: { matchLabels: selector('otel-collector') },
      // Its way out to the tracing backend is the overlay's (egress to where that backend is).
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: pods(...aisleWorkloads), ports: [tcp('otlp-http'), tcp('otlp-grpc')] }],
      egress: [],
    }),
  );
  return out;
}

// ---- NATS authorization: per user, the subjects its code publishes and subscribes ----

/** Provisioning a stream (connectBus -> ensureStreams): info, create when missing, update. Never delete or purge. */
const provision = (...streams) =>
  streams.flatMap((n) => ['INFO', 'CREATE', 'UPDATE'].map((op) => `$JS.API.STREAM.${op}.${n}`));
/** A durable pull consumer (startConsumerLoop): its info, create/update with its filter, pulls and acks. */
const durable = (stream, name, filter) => [
  `$JS.API.CONSUMER.INFO.${stream}.${name}`,
  `$JS.API.CONSUMER.CREATE.${stream}.${name}.${filter}`,
  `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`,
  `$JS.ACK.${stream}.${name}.>`,
];
/**
 * Materializing the accepted catalog (followCatalog: ingest publishes it on ITEMS, one message per item):
 * ordered consumers that the client names, each filtered on one tenant's items; read only, and nothing to
 * acknowledge.
 */
const CATALOG_READ = [
  ...provision('ITEMS'),
  '$JS.API.CONSUMER.CREATE.ITEMS.>',
  '$JS.API.CONSUMER.INFO.ITEMS.*',
  '$JS.API.CONSUMER.MSG.NEXT.ITEMS.*',
  '$JS.API.CONSUMER.DELETE.ITEMS.*',
];
/** Reading the model bucket (ModelRegistry.open, active, load) and the MODELS stream it announces on. */
const MODEL_BUCKET_READ = [
  // Opening the bucket creates it when the trainer has not yet; same configuration, never an update.
  '$JS.API.STREAM.INFO.OBJ_aisle-models',
  '$JS.API.STREAM.CREATE.OBJ_aisle-models',
  '$JS.API.DIRECT.GET.OBJ_aisle-models.>',
  '$JS.API.STREAM.MSG.GET.OBJ_aisle-models',
  // Objects are read through short-lived ordered push consumers, which answer flow control.
  '$JS.API.CONSUMER.CREATE.OBJ_aisle-models.>',
  '$JS.FC.OBJ_aisle-models.>',
  '$JS.API.CONSUMER.INFO.OBJ_aisle-models.*',
  '$JS.API.CONSUMER.MSG.NEXT.OBJ_aisle-models.*',
  '$JS.API.CONSUMER.DELETE.OBJ_aisle-models.*',
  ...provision('MODELS'),
];
/**
 * Following the tenant bucket (watchTenantBucket): open it (created when missing, same configuration),
 * read its entries through an ordered push consumer that answers flow control. Read only: a platform
 * team's own NATS credentials put tenants into it (`nats kv put aisle-tenants <tenant> '{}'`).
 */
const TENANT_BUCKET_READ = [
  '$JS.API.STREAM.INFO.KV_aisle-tenants',
  '$JS.API.STREAM.CREATE.KV_aisle-tenants',
  '$JS.API.DIRECT.GET.KV_aisle-tenants.>',
  '$JS.API.STREAM.MSG.GET.KV_aisle-tenants',
  '$JS.API.CONSUMER.CREATE.KV_aisle-tenants.>',
  '$JS.FC.KV_aisle-tenants.>',
  '$JS.API.CONSUMER.INFO.KV_aisle-tenants.*',
  '$JS.API.CONSUMER.DELETE.KV_aisle-tenants.*',
];
/** Reading and watching the experiment definitions (ExperimentBucket.open, list, watch): the same calls. */
const EXPERIMENT_BUCKET_READ = TENANT_BUCKET_READ.map((g) => g.replace('KV_aisle-tenants', 'KV_aisle-experiments'));
/** feature's durable on EVENTS: per-replica followers on the same stream may never touch it. */
const FEATURE_CONSUMER = [
  '$JS.API.CONSUMER.CREATE.EVENTS.feature.>',
  '$JS.API.CONSUMER.MSG.NEXT.EVENTS.feature',
  '$JS.ACK.EVENTS.feature.>',
];
/**
 * Forget requests (followForgetRequests): the in-memory PRIVACY stream, this owner's consumer on the
 * requests, its completions and set-aside requests out.
 */
const forgetOwner = (owner) => [
  ...provision('PRIVACY'),
  ...durable('PRIVACY', `${owner}-privacy`, 'aisle.privacy.v1.forget.>'),
  'aisle.privacy.v1.forgotten',
  'aisle.privacy.v1.rejected',
];
/** Erasing a user's indexed messages from a stream (secure delete). */
const eraseFrom = (...streams) => streams.map((s) => `$JS.API.STREAM.MSG.DELETE.${s}`);
const inbox = (user) => `_INBOX_${user}.>`;
/** A service that loads models: the bucket read only, announcements by core subscription, its own inbox. */
const modelReader = (user, about, grants) => ({
  user,
  about,
  publish: ['$JS.API.INFO', ...grants.publish, ...MODEL_BUCKET_READ, ...TENANT_BUCKET_READ],
  ...(grants.deny ? { deny: grants.deny } : {}),
  subscribe: [inbox(user), 'aisle.models.v1.published', ...(grants.subscribe ?? [])],
});

/**
 * One entry per NATS user. Every Aisle user: the JetStream account info every client asks for first, and
 * the DLQ stream, which every service provisions because each of its consumers dead-letters what it
 * gives up on (issue #18).
 */
const busUsers = [
  {
    user: 'producer',
    about: [
      "Producers: one tenant's raw clickstream and catalog input and forget requests, nothing else (not the",
      'normalized events, not the model bucket, no JetStream API: publishing with acknowledgements needs',
      'none). The subjects name the tenant and ingest (AISLE_ENV=production) takes it from there, so this user',
      "can write only tenant `default`'s data. Give each producer system and tenant its own user, <tenant> in",
      'place of `default` (README: adding a tenant; `nats-server --signal reload` applies it). Replies arrive',
      'on the default _INBOX.>, where only producers receive anything (every Aisle user has its own prefix).',
    ],
    publish: ['aisle.clickstream.v1.*.default', 'aisle.catalog.v1.upsert.default', 'aisle.privacy.v1.forget.default'],
    subscribe: ['_INBOX.>'],
  },
  {
    user: 'ingest',
    about: [
      'Raw input in, normalized events, the accepted catalog (the only publisher on ITEMS) and dead letters out;',
      'Track and UpsertItems publish raw input; ForgetUser publishes forget requests, and ingest erases a',
      "forgotten user's raw and normalized events, their dead letters, and the raw copies of events that",
      'arrive for the user after the request.',
    ],
    publish: [
      '$JS.API.INFO',
      ...provision('CLICKSTREAM', 'CATALOG', 'EVENTS', 'DLQ'),
      ...durable('CLICKSTREAM', 'ingest-clickstream', 'aisle.clickstream.v1.>'),
      ...durable('CATALOG', 'ingest-catalog', 'aisle.catalog.v1.>'),
      ...CATALOG_READ,
      ...TENANT_BUCKET_READ,
      ...forgetOwner('ingest'),
      ...eraseFrom('CLICKSTREAM', 'EVENTS', 'DLQ'),
      'aisle.privacy.v1.forget.>',
      'aisle.events.v1.>',
      'aisle.items.v1.>',
      'aisle.dlq.v1.clickstream',
      'aisle.dlq.v1.catalog',
      'aisle.clickstream.v1.>',
      'aisle.catalog.v1.upsert.>',
    ],
    subscribe: [inbox('ingest')],
  },
  {
    user: 'feature',
    about: [
      'Normalized events and the accepted catalog in; feature notifications and dead letters out; forget',
      "requests erase the user's notifications and dead letters, and events of the user that arrive after",
      'the request.',
    ],
    publish: [
      '$JS.API.INFO',
      ...provision('EVENTS', 'DLQ', 'FEATURES'),
      ...durable('EVENTS', 'feature', 'aisle.events.v1.>'),
      ...CATALOG_READ,
      ...TENANT_BUCKET_READ,
      ...forgetOwner('feature'),
      ...eraseFrom('FEATURES', 'DLQ', 'EVENTS'),
      'aisle.features.v1.user_updated',
      'aisle.dlq.v1.events',
    ],
    subscribe: [inbox('feature')],
  },
  modelReader(
    'embedding-inference',
    ['The accepted catalog (an ordered consumer per tenant and replica) and the model bucket, read only.'],
    {
      publish: [...provision('DLQ'), ...CATALOG_READ],
      deny: FEATURE_CONSUMER,
    },
  ),
  modelReader(
    'ranking',
    [
      'The accepted catalog (an ordered consumer per tenant and replica), feature change notifications (a plain subscription: they drop',
      'cached user contexts), the model bucket and experiment definitions read only, impressions and dead letters',
      "out; forget requests erase the user's impressions from RANKING.",
    ],
    {
      publish: [
        ...provision('RANKING', 'DLQ'),
        ...CATALOG_READ,
        ...EXPERIMENT_BUCKET_READ,
        ...forgetOwner('ranking'),
        ...eraseFrom('RANKING'),
        'aisle.ranking.v1.served',
      ],
      // Cached user contexts are dropped on a change and on a forget request.
      subscribe: ['aisle.features.v1.user_updated', 'aisle.privacy.v1.forget.>'],
      deny: FEATURE_CONSUMER,
    },
  ),
  modelReader(
    'churn-prediction',
    [
      'Feature notifications in (one consumer for every tenant), the model bucket read only, alerts and dead letters out;',
      "forget requests erase the user's alerts from CHURN.",
    ],
    {
      publish: [
        ...provision('FEATURES', 'CHURN', 'DLQ'),
        ...durable('FEATURES', 'churn', 'aisle.features.v1.user_updated'),
        ...forgetOwner('churn-prediction'),
        ...eraseFrom('CHURN'),
        'aisle.churn.v1.alert',
        'aisle.dlq.v1.features',
      ],
    },
  ),
  modelReader(
    'experiment',
    [
      'Impressions and outcomes in (its two durables), the experiment definitions (the only writer), results and dead letters out;',
      "Promote rewrites a model's active pointer (an object in the model bucket) to a stored version and announces it;",
      "a forget request deletes the user's joined impressions and outcomes.",
    ],
    {
      publish: [
        ...provision('RANKING', 'EVENTS', 'EXPERIMENTS', 'DLQ'),
        ...durable('RANKING', 'experiment-served', 'aisle.ranking.v1.served'),
        ...durable('EVENTS', 'experiment-outcomes', 'aisle.events.v1.>'),
        ...EXPERIMENT_BUCKET_READ,
        ...forgetOwner('experiment'),
        '$KV.aisle-experiments.>',
        'aisle.experiment.v1.result',
        'aisle.dlq.v1.ranking',
        'aisle.dlq.v1.events',
        // The pointer object: written, and its previous chunks purged.
        '$O.aisle-models.>',
        '$JS.API.STREAM.PURGE.OBJ_aisle-models',
        'aisle.models.v1.published',
      ],
      deny: FEATURE_CONSUMER,
    },
  ),
  {
    user: 'console',
    about: [
      "The web console: every stream's state and its durables' backlog (overview), dead letters and churn alerts",
      'through ordered consumers, one dead letter by sequence, the model bucket; replays dead letters to the',
      "producers' subjects; promote and roll back rewrite a model's active pointer and announce it.",
    ],
    publish: [
      '$JS.API.INFO',
      ...provision('DLQ', 'CHURN', 'MODELS'),
      '$JS.API.STREAM.INFO.*',
      '$JS.API.CONSUMER.LIST.*',
      ...['DLQ', 'CHURN'].flatMap((n) => [
        `$JS.API.CONSUMER.CREATE.${n}.>`,
        `$JS.API.CONSUMER.INFO.${n}.*`,
        `$JS.API.CONSUMER.MSG.NEXT.${n}.*`,
        `$JS.API.CONSUMER.DELETE.${n}.*`,
      ]),
      '$JS.API.STREAM.MSG.GET.DLQ',
      ...MODEL_BUCKET_READ,
      ...TENANT_BUCKET_READ,
      // Replays go to the subject the producer used (a tenant's own, or the unbound one).
      'aisle.clickstream.v1.>',
      'aisle.catalog.v1.upsert',
      'aisle.catalog.v1.upsert.>',
      '$O.aisle-models.>',
      '$JS.API.STREAM.PURGE.OBJ_aisle-models',
      'aisle.models.v1.published',
    ],
    subscribe: [inbox('console')],
  },
  {
    user: 'trainer',
    about: [
      'The only writer of model artifacts and the only one to announce new models (and refused candidates); reads the',
      "experiment definitions so that pruning keeps the versions they pin; reads each tenant's catalog once.",
    ],
    publish: [
      '$JS.API.INFO',
      ...provision('DLQ'),
      ...CATALOG_READ,
      ...MODEL_BUCKET_READ,
      ...TENANT_BUCKET_READ,
      ...EXPERIMENT_BUCKET_READ,
      '$JS.API.STREAM.UPDATE.OBJ_aisle-models',
      '$JS.API.STREAM.PURGE.OBJ_aisle-models',
      '$O.aisle-models.>',
      'aisle.models.v1.published',
      'aisle.models.v1.rejected',
    ],
    subscribe: [inbox('trainer')],
  },
];

function authorizationConf() {
  const list = (xs, indent) => xs.map((x) => `${indent}"${x}"`).join('\n');
  const lines = [
    '# Generated by `pnpm k8s` from scripts/k8s.mjs: edit the script, not this file.',
    '#',
    '# Who may do what on the bus: one NATS user per Aisle workload and one per producer, each allowed only',
    '# the subjects and JetStream API calls its code uses. Included by nats.conf; passwords come from the',
    '# Secret aisle-nats-users (secrets/nats-users.env). test/k8s/nats-authorization.spec.ts starts',
    '# nats-server with this very file and runs the services against it. Reading the JetStream grants:',
    '#   $JS.API.STREAM.{INFO,CREATE,UPDATE}.<stream>     provision a stream it declares (never DELETE, PURGE)',
    '#   $JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>  create or update a consumer, filter pinned',
    '#   $JS.API.CONSUMER.MSG.NEXT.<stream>.<name>          pull; $JS.ACK.<stream>.<name>.> acknowledge',
    '#   $O.aisle-models.>, OBJ_aisle-models                the model bucket (an object store over a stream)',
    '# Aisle users get replies on _INBOX_<user>.> only (the runtime sets that prefix), so none can read what',
    '# JetStream delivers to another.',
    '',
    'authorization {',
    '  users: [',
  ];
  for (const u of busUsers) {
    lines.push(...u.about.map((a) => `    # ${a}`));
    lines.push(
      `    {`,
      `      user: ${u.user}`,
      `      password: $${natsPasswordVariable(u.user)}`,
      `      permissions: {`,
    );
    lines.push(`        publish: {`, `          allow: [`, list(u.publish, '            '), `          ]`);
    if (u.deny) lines.push(`          deny: [`, list(u.deny, '            '), `          ]`);
    lines.push(`        }`, `        subscribe: { allow: [${u.subscribe.map((x) => `"${x}"`).join(', ')}] }`);
    lines.push(`      }`, `    }`);
  }
  lines.push('  ]', '}', '');
  return lines.join('\n');
}

// ---- files ----

const HEADER = '# Generated by `pnpm k8s` from scripts/k8s.mjs: edit the script, not this file.\n';
const docs = (objects) => HEADER + objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');

const files = new Map();
for (const s of services) {
  const dir = join('k8s', 'base', s.name);
  files.set(join(dir, 'deployment.yaml'), docs([deployment(s)]));
  files.set(join(dir, 'service.yaml'), docs(services_(s)));
  files.set(join(dir, 'autoscaling.yaml'), docs(autoscaling(s)));
  files.set(join(dir, 'serviceaccount.yaml'), docs([serviceAccount(s.name, s.component)]));
  files.set(
    join(dir, 'kustomization.yaml'),
    docs([workloadKustomization(s, ['serviceaccount.yaml', 'deployment.yaml', 'service.yaml', 'autoscaling.yaml'])]),
  );
}
files.set(join('k8s', 'base', 'trainer', 'cronjob.yaml'), docs(trainer()));
files.set(
  join('k8s', 'base', 'trainer', 'kustomization.yaml'),
  docs([workloadKustomization(trainerSpec, ['cronjob.yaml'])]),
);
files.set(join('k8s', 'components', 'identities', 'certificates.yaml'), docs(workloads.map(certificate)));
files.set(join('k8s', 'components', 'identities', 'kustomization.yaml'), docs([identitiesKustomization()]));
files.set(join('k8s', 'components', 'network-policies', 'policies.yaml'), docs(networkPolicies()));
files.set(join('k8s', 'overlays', 'prod', 'authorization.conf'), authorizationConf());

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
  process.stdout.write('k8s is out of date: run `pnpm k8s`\n');
  process.exit(1);
}
process.stdout.write(`${files.size} files, ${stale} ${check ? 'stale' : 'written'}\n`);
