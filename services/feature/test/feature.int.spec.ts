/** The feature process's gRPC contract: request-order answers, unknown markers, field-level errors. */
import { clickstreamV1, ContentTypes, featureV1, Headers, Streams, Subjects } from '@aisle/contracts';
import { createGrpcClient, grpc, isGrpcError } from '@aisle/runtime';
import {
  eventually,
  healthCheck,
  listServicesByReflection,
  startNatsServer,
  startServiceProcess,
  tempSqliteUrl,
  type NatsServerHandle,
  type ServiceProcess,
} from '@aisle/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';

jest.setTimeout(60_000);

let nats: NatsServerHandle;
let storeFile: ReturnType<typeof tempSqliteUrl>;
let feature: ServiceProcess;
let nc: NatsConnection;
let client: ReturnType<typeof createGrpcClient<typeof featureV1.FeatureServiceService>>;

beforeAll(async () => {
  nats = await startNatsServer();
  storeFile = tempSqliteUrl();
  feature = await startServiceProcess('feature', {
    AISLE_NATS_URL: nats.url,
    AISLE_STORE_URL: storeFile.url,
    AISLE_TENANTS: 'default,shop,other,ctx',
  });
  nc = await connect({ servers: nats.url });
  client = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${feature.grpcPort}`, { deadlineMs: 5000 });
});

afterAll(async () => {
  client?.close();
  await nc?.close();
  await feature?.stop();
  await nats?.dispose();
  storeFile?.dispose();
});

test('answers in request order with unknown markers, and tells changed users on the bus', async () => {
  const js = jetstream(nc);
  const h = headers();
  h.set(Headers.contentType, ContentTypes.protobuf);
  const e = clickstreamV1.Event.fromPartial({
    eventId: 'x1',
    tenant: 'shop',
    type: 'view',
    userId: 'u7',
    itemId: 'i3',
    occurredAt: new Date(Date.UTC(2026, 10, 1)),
  });
  await js.publish(Subjects.events('view'), clickstreamV1.Event.encode(e).finish(), { headers: h, msgID: 'shop:x1' });
  await eventually(
    async () => (await client.getUserFeatures({ tenant: 'shop', userIds: ['u7'], recentLimit: 0 })).users[0]?.known,
    { what: 'feature applied' },
  );
  const { users } = await client.getUserFeatures({ tenant: 'shop', userIds: ['nobody', 'u7'], recentLimit: 1 });
  expect(users.map((u) => [u.userId, u.known])).toEqual([
    ['nobody', false],
    ['u7', true],
  ]);
  const { items } = await client.getItemFeatures({ tenant: 'shop', itemIds: ['i3', 'zz'], coVisitLimit: 0 });
  expect(items.map((i) => [i.itemId, i.known, i.views, i.inCatalog])).toEqual([
    ['i3', true, 1, false],
    ['zz', false, 0, false],
  ]);
  // Another tenant sees nothing of it.
  expect((await client.getUserFeatures({ tenant: 'other', userIds: ['u7'], recentLimit: 0 })).users[0]?.known).toBe(
    false,
  );
  const jsm = await jetstreamManager(nc);
  const updated = await jsm.streams.getMessage(Streams.FEATURES.name, { last_by_subj: Subjects.userFeaturesUpdated });
  expect(featureV1.UserFeaturesUpdated.decode(updated!.data)).toMatchObject({
    tenant: 'shop',
    userId: 'u7',
    eventType: 'view',
  });
});

test.each([
  ['user_ids: at least one id required', { tenant: '', userIds: [], recentLimit: 0 }],
  ['user_ids[1]: must not be empty', { tenant: '', userIds: ['a', ''], recentLimit: 0 }],
  ['recent_limit: must be between 0 and 200', { tenant: '', userIds: ['a'], recentLimit: -1 }],
  [
    'user_ids: more than 1000 ids',
    { tenant: '', userIds: Array.from({ length: 1001 }, (_, i) => `u${i}`), recentLimit: 0 },
  ],
])('GetUserFeatures -> INVALID_ARGUMENT "%s"', async (details, req) => {
  const err: unknown = await client.getUserFeatures(req).catch((x: unknown) => x);
  expect(isGrpcError(err) && [err.code, err.details]).toEqual([grpc.status.INVALID_ARGUMENT, details]);
});

test('GetItemFeatures rejects a bad co_visit_limit', async () => {
  const err: unknown = await client
    .getItemFeatures({ tenant: '', itemIds: ['a'], coVisitLimit: 500 })
    .catch((x: unknown) => x);
  expect(isGrpcError(err) && [err.code, err.details]).toEqual([
    grpc.status.INVALID_ARGUMENT,
    'co_visit_limit: must be between 0 and 100',
  ]);
});

test('GetUserContext: the user and the co-visits of their recent items in one call; ListItemStats pages', async () => {
  const js = jetstream(nc);
  const h = headers();
  h.set(Headers.contentType, ContentTypes.protobuf);
  const t0 = Date.UTC(2026, 10, 2);
  for (const [k, itemId] of ['a', 'b', 'c', 'b'].entries()) {
    const e = clickstreamV1.Event.fromPartial({
      eventId: `ctx${k}`,
      tenant: 'ctx',
      type: 'view',
      userId: 'u8',
      itemId,
      occurredAt: new Date(t0 + k * 60_000),
    });
    await js.publish(Subjects.events('view'), clickstreamV1.Event.encode(e).finish(), {
      headers: h,
      msgID: `ctx:ctx${k}`,
    });
  }
  await eventually(
    async () =>
      (await client.getUserContext({ tenant: 'ctx', userId: 'u8', recentLimit: 0, coVisitItems: 0, coVisitLimit: 0 }))
        .user?.recent.length === 4,
    { what: 'events applied' },
  );
  const ctx = await client.getUserContext({
    tenant: 'ctx',
    userId: 'u8',
    recentLimit: 0,
    coVisitItems: 2,
    coVisitLimit: 5,
  });
  expect(ctx.user?.known).toBe(true);
  // The two most recent distinct items (b, then c), each with its co-visited items.
  expect(ctx.coVisits.map((c) => c.itemId)).toEqual(['b', 'c']);
  expect(ctx.coVisits[0]?.coVisited.map((n) => n.itemId).sort()).toEqual(['a', 'c']);
  const unknown = await client.getUserContext({
    tenant: 'ctx',
    userId: 'nobody',
    recentLimit: 0,
    coVisitItems: 5,
    coVisitLimit: 5,
  });
  expect([unknown.user?.known, unknown.coVisits]).toEqual([false, []]); // no recent items, no seeds
  const err: unknown = await client
    .getUserContext({ tenant: 'ctx', userId: 'u8', recentLimit: 0, coVisitItems: 50, coVisitLimit: 5 })
    .catch((x: unknown) => x);
  expect(isGrpcError(err) && err.details).toBe('co_visit_items: must be between 0 and 20');

  const first = await client.listItemStats({ tenant: 'ctx', pageSize: 2, pageToken: '' });
  const second = await client.listItemStats({ tenant: 'ctx', pageSize: 2, pageToken: first.nextPageToken });
  expect([...first.items, ...second.items].map((i) => i.itemId)).toEqual(['a', 'b', 'c']);
  expect(second.nextPageToken).toBe('');
  const b = first.items[1];
  const [bFeatures] = (await client.getItemFeatures({ tenant: 'ctx', itemIds: ['b'], coVisitLimit: 0 })).items;
  expect(b).toEqual({
    itemId: 'b',
    popularity7d: bFeatures?.popularity7d,
    ctr: bFeatures?.ctr,
    conversionRate: bFeatures?.conversionRate,
  });
});

test('health and reflection', async () => {
  const address = `127.0.0.1:${feature.grpcPort}`;
  expect(await healthCheck(address, 'aisle.feature.v1.FeatureService')).toBe('SERVING');
  expect(await listServicesByReflection(address)).toEqual(['aisle.feature.v1.FeatureService', 'grpc.health.v1.Health']);
});
