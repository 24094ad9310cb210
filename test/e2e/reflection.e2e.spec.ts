/**
 * Server reflection that strict clients accept: a Python client that shares nothing with Aisle (Debian's
 * python3-grpcio and python3-protobuf, installed by `npm test`'s bootstrap) builds a descriptor pool
 * only from what each running service reflects, then lists, describes and calls every RPC of every
 * service, as grpcurl does without proto files.
 */
import { startLocalStack, type LocalStack } from '@aisle/local-stack';
import { repoRoot, tempSqliteUrl } from '@aisle/testkit';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

jest.setTimeout(180_000);

interface StrictClientReport {
  services: string[];
  services_v1alpha: string[];
  methods: Array<{ method: string; input: string; output: string }>;
  calls: Array<{ method: string; code: string; details?: string; response?: Record<string, unknown> }>;
  error?: string;
}

/** Debian's Python, where apt puts grpcio and protobuf (not a pyenv or venv one). */
const PYTHON = '/usr/bin/python3';

function strictClient(address: string, bodies: Record<string, unknown> = {}): Promise<StrictClientReport> {
  const script = join(repoRoot, 'test', 'support', 'strict_reflection_client.py');
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, address, JSON.stringify(bodies)], { timeout: 60_000 }, (err, stdout, stderr) => {
      try {
        resolve(JSON.parse(stdout) as StrictClientReport);
      } catch {
        reject(new Error(`strict client failed (${err?.message ?? 'no output'}):\n${stderr}\n${stdout}`));
      }
    });
  });
}

const hosted: Record<keyof LocalStack['services'], string> = {
  ingest: 'aisle.ingest.v1.IngestService',
  feature: 'aisle.feature.v1.FeatureService',
  embedding: 'aisle.embedding.v1.EmbeddingService',
  ranking: 'aisle.ranking.v1.RankingService',
  churn: 'aisle.churn.v1.ChurnService',
  experiment: 'aisle.experiment.v1.ExperimentService',
};

// What a request body looks like from outside: proto3 JSON, Timestamps as RFC 3339 strings.
const bodies: Record<string, unknown> = {
  'aisle.ingest.v1.IngestService/Track': {
    events: [{ eventId: 'r1', type: 'view', userId: 'u1', itemId: 'i1', occurredAt: '2026-01-01T10:00:00Z' }],
  },
  'aisle.ranking.v1.RankingService/Recommend': { userId: 'u1', limit: 5 },
  'aisle.feature.v1.FeatureService/GetUserFeatures': { userIds: ['u1'] },
  'aisle.churn.v1.ChurnService/Predict': { userIds: ['u1'] },
};

let stack: LocalStack;
let storeFile: ReturnType<typeof tempSqliteUrl>;

beforeAll(async () => {
  storeFile = tempSqliteUrl();
  stack = await startLocalStack({ storeUrl: storeFile.url });
});

afterAll(async () => {
  await stack?.stop();
  storeFile?.dispose();
});

test.each(Object.keys(hosted) as Array<keyof LocalStack['services']>)(
  '%s: a strict descriptor pool lists, describes and calls every RPC',
  async (name) => {
    const report = await strictClient(`127.0.0.1:${stack.services[name].grpcPort}`, bodies);
    expect(report.error).toBeUndefined();
    expect(report.services).toEqual([hosted[name], 'grpc.health.v1.Health']);
    expect(report.services_v1alpha).toEqual(report.services);
    const ownMethods = report.methods.filter((m) => m.method.startsWith(`${hosted[name]}/`));
    expect(ownMethods.length).toBeGreaterThan(0);
    for (const m of report.methods) {
      expect(m.input).toMatch(/^(aisle|grpc)\.[a-z]+\.v1(alpha)?\.[A-Z]\w+$/);
      expect(m.output).toMatch(/^(aisle|grpc)\.[a-z]+\.v1(alpha)?\.[A-Z]\w+$/);
    }
    // Every RPC answers as designed: OK, or a status naming what is wrong with an empty request.
    expect(report.calls.map((c) => c.method).sort()).toEqual(report.methods.map((m) => m.method).sort());
    for (const c of report.calls) {
      expect({ method: c.method, code: c.code }).toEqual({
        method: c.method,
        code: expect.not.stringMatching(/^(UNIMPLEMENTED|INTERNAL|UNKNOWN|DEADLINE_EXCEEDED)$/) as unknown,
      });
    }
    const health = report.calls.find((c) => c.method === 'grpc.health.v1.Health/Check');
    expect(health).toMatchObject({ code: 'OK', response: { status: 'SERVING' } });
    if (name === 'ingest')
      expect(report.calls.find((c) => c.method.endsWith('/Track'))).toMatchObject({
        code: 'OK',
        response: { accepted: 1 },
      });
    if (name === 'ranking')
      expect(report.calls.find((c) => c.method.endsWith('/Recommend'))).toMatchObject({ code: 'OK' });
  },
);
