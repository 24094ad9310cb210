/**
 * Issue #17: pods the autoscaler adds get traffic only if clients reconnect (and so re-resolve the
 * headless Service). The server ends every connection after its maximum age; calls keep succeeding.
 */
import { featureV1 } from '@aisle/contracts';
import { createGrpcClient, startGrpcServer, type grpc, type RunningGrpcServer } from '../src';

async function servePeers(maxConnectionAgeMs?: number): Promise<{ server: RunningGrpcServer; peers: Set<string> }> {
  const peers = new Set<string>();
  const answer =
    <T>(value: T) =>
    (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<T>) => {
      peers.add(call.getPeer());
      callback(null, value);
    };
  const server = await startGrpcServer({
    host: '127.0.0.1',
    port: 0,
    services: [
      {
        definition: featureV1.FeatureServiceService,
        implementation: {
          getUserFeatures: answer(featureV1.GetUserFeaturesResponse.fromPartial({})),
          getItemFeatures: answer(featureV1.GetItemFeaturesResponse.fromPartial({})),
          listPopularItems: answer(featureV1.ListPopularItemsResponse.fromPartial({})),
          listUsers: answer(featureV1.ListUsersResponse.fromPartial({})),
        },
      },
    ],
    ...(maxConnectionAgeMs !== undefined ? { maxConnectionAgeMs, maxConnectionAgeGraceMs: 2000 } : {}),
  });
  server.setServing(true);
  return { server, peers };
}

/** One client calling steadily for `ms`; returns how many calls failed. */
async function callFor(port: number, ms: number): Promise<number> {
  const client = createGrpcClient(featureV1.FeatureServiceService, `127.0.0.1:${port}`, { deadlineMs: 2000 });
  let failed = 0;
  const until = Date.now() + ms;
  try {
    while (Date.now() < until) {
      await client.getUserFeatures({ tenant: '', userIds: ['u1'], recentLimit: 0 }).catch(() => failed++);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    client.close();
  }
  return failed;
}

test('connections are recycled after their maximum age, without failed calls', async () => {
  const { server, peers } = await servePeers(300);
  try {
    expect(await callFor(server.port, 2000)).toBe(0);
    // Each reconnection comes from a new client port: several connections over two seconds.
    expect(peers.size).toBeGreaterThanOrEqual(3);
  } finally {
    await server.shutdown(1000);
  }
});

test('the default age keeps one connection over a short session', async () => {
  const { server, peers } = await servePeers();
  try {
    expect(await callFor(server.port, 1000)).toBe(0);
    expect(peers.size).toBe(1);
  } finally {
    await server.shutdown(1000);
  }
});
