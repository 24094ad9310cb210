/**
 * What an operator or producer meets first, as they would meet it: a typo in AISLE_STORE_URL, an
 * unreachable NATS, and the README's producer example run as written.
 */
import { Streams } from '@aisle/contracts';
import { freePort, repoRoot, runJobProcess, startNatsServer, tempDir, type NatsServerHandle } from '@aisle/testkit';
import { execFile } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectTestBus } from '../support/bus';

jest.setTimeout(60_000);

let nats: NatsServerHandle;
beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

test('a bad AISLE_STORE_URL stops the start at configuration time, naming the variable', async () => {
  for (const url of ['postgres://db/aisle', 'sqlite:/tmp/x.db?busy=5', 'mongodb://']) {
    const started = Date.now();
    const r = await runJobProcess('ingest', { AISLE_STORE_URL: url, AISLE_NATS_URL: nats.url }, { timeoutMs: 20_000 });
    expect({ url, code: r.code }).toEqual({ url, code: 2 });
    expect(r.stderr).toContain('AISLE_STORE_URL');
    // Nothing was opened: no log line at all, and no time spent connecting.
    expect(r.logs).toEqual([]);
    expect(Date.now() - started).toBeLessThan(10_000);
  }
});

test('an unreachable NATS is reported with the URL that was tried', async () => {
  const port = await freePort();
  const url = `nats://aisle:secret@127.0.0.1:${port}`;
  const dir = tempDir('aisle-store-');
  const r = await runJobProcess('feature', {
    AISLE_NATS_URL: url,
    AISLE_STORE_URL: `sqlite:${join(dir.path, 'aisle.db')}`,
    AISLE_GRPC_PORT: '0',
    AISLE_METRICS_PORT: '-1',
  }).finally(() => dir.dispose());
  expect(r.code).toBe(1);
  const failure = JSON.stringify(r.logs.find((l) => l['msg'] === 'start failed'));
  expect(failure).toContain(`nats://aisle:***@127.0.0.1:${port}`);
  expect(failure).not.toContain('secret');
});

test("the README's TypeScript producer publishes its event and exits by itself", async () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Publishing events'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  expect(code).toContain("'nats://127.0.0.1:4222'");
  // Streams exist once a service started; create CLICKSTREAM the way ingest does.
  const bus = await connectTestBus(nats.url);
  const dir = tempDir('aisle-readme-');
  try {
    await bus.jsm.streams.add({ name: Streams.CLICKSTREAM.name, subjects: [...Streams.CLICKSTREAM.subjects] });
    // The example as written (plain JavaScript under its TypeScript fence), pointed at this server, with
    // the packages a producer would install.
    symlinkSync(join(repoRoot, 'test', 'node_modules'), join(dir.path, 'node_modules'));
    writeFileSync(join(dir.path, 'producer.mjs'), (code as string).replace('nats://127.0.0.1:4222', nats.url));
    const exit = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        [join(dir.path, 'producer.mjs')],
        { timeout: 15_000 },
        (_e, _o, stderr) => resolve({ code: child.exitCode, stderr }),
      );
    });
    expect(exit).toEqual({ code: 0, stderr: '' });
    const stored = await bus.jsm.streams.getMessage(Streams.CLICKSTREAM.name, {
      last_by_subj: 'aisle.clickstream.v1.view.default',
    });
    expect(stored?.header.get('Nats-Msg-Id')).toBe('default:e1');
    expect(JSON.parse(new TextDecoder().decode(stored?.data))).toMatchObject({ event_id: 'e1', user_id: 'u1' });
  } finally {
    await bus.nc.close();
    dir.dispose();
  }
});
