/**
 * Issue #17: deploy/compose.yaml starts the services only once NATS and MongoDB can serve. The NATS
 * healthcheck runs as written against a real nats-server; MongoDB's mongosh script (no MongoDB server
 * can run here) runs in a sandbox whose `rs` and `db` behave like a fresh member, an electing one and a
 * primary, so the check is shown to fail until a primary exists.
 */
import { readConfig, type Env } from '@aisle/runtime';
import { freePort, startNatsServer } from '@aisle/testkit';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { parseAllDocuments } from 'yaml';
import { AISLE_SERVICES, CONFIG_SPECS, root } from './render';

/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-explicit-any */
const compose: any = parseAllDocuments(readFileSync(join(root, 'deploy', 'compose.yaml'), 'utf8'), {
  merge: true,
})[0]!.toJSON();
const healthcheck = (service: string): string[] => compose.services[service]?.healthcheck?.test ?? [];

test('every service is built from this Dockerfile, waits for healthy dependencies and passes its config check', () => {
  // Not the console: off loopback it needs a login or a trusted proxy (the prod overlay has them), and
  // compose is for development, where `npm run demo` runs it on this machine.
  for (const name of [...AISLE_SERVICES.filter((s) => s !== 'console'), 'trainer']) {
    const s = compose.services[name];
    expect(s?.build?.args?.SERVICE).toBe(name);
    expect(existsSync(join(root, 'services', name, 'package.json'))).toBe(true);
    expect(() => readConfig(CONFIG_SPECS[name]!, s.environment as Env)).not.toThrow();
    expect(s.environment['AISLE_STORE_URL']).toMatch(/^mongodb:\/\//);
    expect(s.depends_on).toEqual(
      expect.objectContaining({
        nats: { condition: 'service_healthy' },
        mongodb: { condition: 'service_healthy' },
      }),
    );
  }
  expect(Object.keys(compose.services)).toEqual(
    expect.arrayContaining(['nats', 'mongodb', 'otel-collector', 'jaeger']),
  );
  // The collector's configuration is the development one, exporting to the Jaeger beside it.
  const mount = String(compose.services['otel-collector'].volumes[0]).split(':')[0]!;
  expect(readFileSync(join(root, 'deploy', mount), 'utf8')).toMatch(/endpoint: \$\{env:OTEL_BACKEND_ENDPOINT\}/);
  expect(compose.services['otel-collector'].environment.OTEL_BACKEND_ENDPOINT).toBe('jaeger:4317');
});

test('the NATS healthcheck passes against a running server and fails without one', async () => {
  const [cmd, ...args] = healthcheck('nats');
  expect(cmd).toBe('CMD');
  const monitor = await freePort();
  const nats = await startNatsServer({ args: ['-m', String(monitor)] });
  const run = () =>
    spawnSync(
      args[0]!,
      args.slice(1).map((a) => a.replace('127.0.0.1:8222', `127.0.0.1:${monitor}`)),
      // No proxy settings: the check talks to the server itself.
      { encoding: 'utf8', timeout: 10_000, env: { PATH: process.env['PATH'] } },
    ).status;
  try {
    expect(run()).toBe(0);
  } finally {
    await nats.dispose();
  }
  expect(run()).not.toBe(0);
});

/** mongosh's exit status for an --eval script: quit(n) -> n, an uncaught error -> 1, otherwise 0. */
function mongoshExit(script: string, member: 'fresh' | 'electing' | 'primary'): { code: number; initiated: boolean } {
  let initiated = member !== 'fresh';
  class Quit extends Error {
    constructor(readonly code: number) {
      super(`quit(${code})`);
    }
  }
  const sandbox = {
    rs: {
      status() {
        if (!initiated) throw new Error('MongoServerError: no replset config has been received');
        return { ok: 1 };
      },
      initiate() {
        initiated = true;
        return { ok: 1 };
      },
    },
    // Right after rs.initiate(), and while electing, the member is not yet writable.
    db: { hello: () => ({ isWritablePrimary: member === 'primary' }) },
    quit: (code = 0) => {
      throw new Quit(code);
    },
  };
  try {
    runInNewContext(script, sandbox);
    return { code: 0, initiated };
  } catch (err) {
    return { code: err instanceof Quit ? err.code : 1, initiated };
  }
}

test('the MongoDB healthcheck initiates the replica set and passes only once a primary exists', () => {
  const test = healthcheck('mongodb');
  expect(test.slice(0, 2)).toEqual(['CMD', 'mongosh']);
  const script = test[test.indexOf('--eval') + 1]!;
  expect(mongoshExit(script, 'fresh')).toEqual({ code: 1, initiated: true });
  expect(mongoshExit(script, 'electing').code).toBe(1);
  expect(mongoshExit(script, 'primary').code).toBe(0);
  // The script it replaced passed before a primary existed.
  const before = "try { rs.status().ok } catch (e) { rs.initiate({ _id: 'rs0', members: [] }).ok }";
  expect(mongoshExit(before, 'fresh').code).toBe(0);
});
