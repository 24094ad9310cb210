import { ContentTypes, featureV1, Headers, privacyV1, Subjects } from '@aisle/contracts';
import { memoryLogger } from '@aisle/runtime';
import { eventually, startNatsServer, type NatsServerHandle } from '@aisle/testkit';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { followUserUpdates, type UserInvalidation } from '../src/user-updates.nats';

let nats: NatsServerHandle;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc.close();
  await nats.dispose();
});

/** A cache that records what it was told (`+` a change, `-` a forget request). */
function recordingCache(): UserInvalidation & { dropped: string[] } {
  const dropped: string[] = [];
  return {
    dropped,
    updated: (u) => dropped.push(`+${u}`),
    forgotten: (u) => dropped.push(`-${u}`),
    clear: () => dropped.push('*'),
  };
}

test('a change or a forget request drops the user from the caches of their tenant only', async () => {
  const shopA = recordingCache();
  const shopB = recordingCache();
  const follow = followUserUpdates(
    nc,
    { of: (t) => (t === 'a' ? [shopA] : t === 'b' ? [shopB] : []), all: () => [shopA, shopB] },
    memoryLogger(),
  );
  try {
    await nc.flush();
    nc.publish(
      Subjects.userFeaturesUpdated,
      featureV1.UserFeaturesUpdated.encode(
        featureV1.UserFeaturesUpdated.fromPartial({ tenant: 'a', userId: 'changed', eventType: 'view' }),
      ).finish(),
    );
    // A forget request as producers may send it: protobuf, or JSON with its content type.
    nc.publish(
      Subjects.privacyForget('a'),
      privacyV1.ForgetUser.encode(privacyV1.ForgetUser.fromPartial({ tenant: 'a', userId: 'gone' })).finish(),
    );
    const h = headers();
    h.set(Headers.contentType, ContentTypes.json);
    nc.publish(Subjects.privacyForget('b'), new TextEncoder().encode(JSON.stringify({ user_id: 'gone-too' })), {
      headers: h,
    });
    // Garbage is ignored, and so is a request without a user, or one naming another tenant than its subject's.
    nc.publish(Subjects.privacyForget('a'), new TextEncoder().encode('not a request'));
    nc.publish(
      Subjects.privacyForget('a'),
      privacyV1.ForgetUser.encode(privacyV1.ForgetUser.fromPartial({ tenant: 'a' })).finish(),
    );
    nc.publish(
      Subjects.privacyForget('b'),
      privacyV1.ForgetUser.encode(privacyV1.ForgetUser.fromPartial({ tenant: 'a', userId: 'changed' })).finish(),
    );
    await eventually(() => shopA.dropped.length === 2 && shopB.dropped.length === 1, {
      what: 'invalidations',
      timeoutMs: 5000,
    }).catch((err: unknown) => {
      throw new Error(`${String(err)}: a ${shopA.dropped.join()} b ${shopB.dropped.join()}`);
    });
    await nc.flush();
    expect(shopA.dropped).toEqual(['+changed', '-gone']);
    expect(shopB.dropped).toEqual(['-gone-too']);
  } finally {
    follow.stop();
  }
});
