/**
 * Issue #5: one trace spans a gRPC Track into ingest, the NATS hop, the feature update and a Recommend,
 * and no span carries personal data. The three services run in this process (the same composition
 * roots their `main.ts` runs) so that one in-memory exporter sees every span.
 */
import { featureV1, ingestV1, rankingV1 } from '@aisle/contracts';
import {
  createGrpcClient,
  initTelemetry,
  startServiceInProcess,
  withSpan,
  type InProcessService,
  type Telemetry,
} from '@aisle/runtime';
import { eventually, startNatsServer, tempSqliteUrl, type NatsServerHandle } from '@aisle/testkit';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startFeature } from '../../services/feature/src/app';
import { loadFeatureConfig } from '../../services/feature/src/config';
import { startIngest } from '../../services/ingest/src/app';
import { loadIngestConfig } from '../../services/ingest/src/config';
import { startRanking } from '../../services/ranking/src/app';
import { loadRankingConfig } from '../../services/ranking/src/config';

jest.setTimeout(60_000);

// Personal data a span must never carry, made distinctive so that any leak is found by substring.
const USER = 'shopper-4f1c2a';
const SESSION = 'session-9b7e55';
const QUERY = 'maternity jeans size 14';

const exporter = new InMemorySpanExporter();
let telemetry: Telemetry;
let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
const services: InProcessService[] = [];

beforeAll(async () => {
  telemetry = initTelemetry({ serviceName: 'test-client', exporter });
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  const env = {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_GRPC_HOST: '127.0.0.1',
    AISLE_GRPC_PORT: '0',
    AISLE_METRICS_PORT: '-1',
    AISLE_LOG_LEVEL: 'warn',
  };
  services.push(await startServiceInProcess('ingest', loadIngestConfig(env), startIngest, { spanExporter: exporter }));
  services.push(
    await startServiceInProcess('feature', loadFeatureConfig(env), startFeature, { spanExporter: exporter }),
  );
  const featureAddr = `127.0.0.1:${services[1]!.grpcPort}`;
  // No embedding-inference: ranking answers from features and popularity (degraded), still traced.
  services.push(
    await startServiceInProcess(
      'ranking',
      loadRankingConfig({ ...env, AISLE_FEATURE_ADDR: featureAddr, AISLE_EMBEDDING_ADDR: '127.0.0.1:1' }),
      startRanking,
      { spanExporter: exporter },
    ),
  );
});

afterAll(async () => {
  for (const s of services.reverse()) await s.stop();
  await telemetry?.shutdown();
  await nats?.dispose();
  storeFile?.dispose();
});

const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000);

test('Track -> NATS -> feature update -> Recommend is one trace, free of personal data', async () => {
  const [ingestSvc, featureSvc, rankingSvc] = services as [InProcessService, InProcessService, InProcessService];
  const ingest = createGrpcClient(ingestV1.IngestServiceService, `127.0.0.1:${ingestSvc.grpcPort}`, {
    deadlineMs: 5000,
  });
  const features = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${featureSvc.grpcPort}`, {
    deadlineMs: 5000,
  });
  const ranking = createGrpcClient(rankingV1.RankingServiceService, `127.0.0.1:${rankingSvc.grpcPort}`, {
    deadlineMs: 5000,
  });

  // The catalog, outside the trace under test.
  const items = Array.from({ length: 12 }, (_, i) => ({
    itemId: `item-${i}`,
    title: `Item ${i}`,
    description: '',
    category: i % 2 ? 'women/jeans' : 'women/tops',
    brand: 'b',
    price: 20 + i,
    inStock: true,
    attributes: {},
    tenant: '',
    updatedAt: at(60),
    imageUrl: '',
  }));
  await ingest.upsertItems({
    items: items.map((i) => ingestV1.UpsertItemsRequest.fromPartial({ items: [i] }).items[0]!),
  });

  const traceId = await withSpan(telemetry.tracer, 'shopper journey', {}, async (root) => {
    const base = { tenant: '', userId: USER, sessionId: SESSION };
    const tracked = await ingest.track({
      events: [
        ingestV1.TrackRequest.fromPartial({
          events: [{ ...base, eventId: 'ev-1', type: 'search', query: QUERY, occurredAt: at(3) }],
        }).events[0]!,
        ingestV1.TrackRequest.fromPartial({
          events: [{ ...base, eventId: 'ev-2', type: 'view', itemId: 'item-1', occurredAt: at(2) }],
        }).events[0]!,
        ingestV1.TrackRequest.fromPartial({
          events: [{ ...base, eventId: 'ev-3', type: 'click', itemId: 'item-3', occurredAt: at(1) }],
        }).events[0]!,
      ],
    });
    expect(tracked).toEqual({ accepted: 3, rejected: [] });
    await eventually(
      async () =>
        (await features.getUserFeatures({ tenant: '', userIds: [USER], recentLimit: 0 })).users[0]?.recent.length === 2,
      { what: 'features updated' },
    );
    // Popular items come from statistics ranking refreshes in the background: the first may take a moment.
    await eventually(
      async () =>
        (await ranking.recommend(rankingV1.RecommendRequest.fromPartial({ userId: USER, limit: 5 }))).items.length > 0,
      { what: 'recommendations' },
    );
    // The shopper's context was reloaded in the background when feature announced the change (no
    // request waits for it); a visitor ranking has not seen is looked up within their Recommend.
    await ranking.recommend(rankingV1.RecommendRequest.fromPartial({ userId: 'first-visit', limit: 5 }));
    return root.spanContext().traceId;
  });

  await eventually(
    () => exporter.getFinishedSpans().some((s) => s.spanContext().traceId === traceId && s.name === 'feature update'),
    { what: 'feature update span' },
  );
  const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const parentOf = (s: ReadableSpan) => byId.get(s.parentSpanContext?.spanId ?? '');
  const ancestry = (s: ReadableSpan): string[] => {
    const names: string[] = [];
    for (let p = parentOf(s); p; p = parentOf(p)) names.push(p.name);
    return names;
  };

  // The NATS hop: the feature update descends from ingest's consumer span, which descends from Track.
  const update = spans.find((s) => s.name === 'feature update');
  expect(update).toBeDefined();
  const chain = ancestry(update!);
  expect(chain[0]).toMatch(/^ingest /);
  expect(chain).toContain('aisle.ingest.v1.IngestService/Track');
  expect(chain[chain.length - 1]).toBe('shopper journey');

  // Recommend and the feature lookup it made (for the visitor ranking had not seen), in the same trace.
  const recommend = spans.find((s) => s.name === 'aisle.ranking.v1.RankingService/Recommend');
  expect(recommend).toBeDefined();
  const lookup = spans.find(
    (s) =>
      s.name === 'aisle.feature.v1.FeatureService/GetUserContext' &&
      ancestry(s).includes('aisle.ranking.v1.RankingService/Recommend'),
  );
  expect(lookup).toBeDefined();

  // No span, span event or status message carries the shopper's id, session or query.
  const texts = spans.flatMap((s) => [
    ...Object.values(s.attributes).map(String),
    ...s.events.flatMap((e) => [e.name, ...Object.values(e.attributes ?? {}).map(String)]),
    s.status.message ?? '',
  ]);
  expect(texts.length).toBeGreaterThan(10);
  for (const secret of [USER, SESSION, QUERY]) expect(texts.filter((t) => t.includes(secret))).toEqual([]);

  ingest.close();
  features.close();
  ranking.close();
});
