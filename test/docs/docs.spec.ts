/** Keeps the docs true: each service README's environment table matches the service's config spec. */
import { describeConfig, readConfig, type ConfigSpec } from '@aisle/runtime';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const services = readdirSync(join(root, 'services')).filter((s) =>
  existsSync(join(root, 'services', s, 'src', 'config.ts')),
);

test.each(services)(
  'services/%s/README.md lists its environment exactly (run `pnpm docs` to refresh)',
  async (name) => {
    const { configSpec } = (await import(join(root, 'services', name, 'src', 'config.ts'))) as {
      configSpec: ConfigSpec;
    };
    const readme = readFileSync(join(root, 'services', name, 'README.md'), 'utf8');
    expect(readme).toContain(describeConfig(configSpec));
  },
);

test('README names the two set-up commands and .ci/run runs the test one', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  expect(readme).toContain('npm run demo');
  expect(readme).toContain('npm test');
  expect(readFileSync(join(root, '.ci', 'run'), 'utf8')).toMatch(/^npm test$/m);
});

test('each service has its own default ports, and the default client addresses find them', async () => {
  const load = async (name: string) =>
    (
      (await import(join(root, 'services', name, 'src', 'config.ts'))) as {
        configSpec: ConfigSpec;
      }
    ).configSpec;
  const config = async (name: string) => readConfig(await load(name), {}) as Record<string, unknown>;
  const served = ['ingest', 'feature', 'embedding-inference', 'ranking', 'churn-prediction', 'experiment'];
  const defaults = await Promise.all(served.map(config));
  const grpcPorts = defaults.map((c) => c['grpcPort']);
  const metricsPorts = defaults.map((c) => c['metricsPort']);
  expect(new Set(grpcPorts).size).toBe(served.length);
  expect(new Set(metricsPorts).size).toBe(served.length);
  const portOf = (name: string) => `127.0.0.1:${String(defaults[served.indexOf(name)]?.['grpcPort'])}`;
  const ranking = await config('ranking');
  expect(ranking['featureAddr']).toBe(portOf('feature'));
  expect(ranking['embeddingAddr']).toBe(portOf('embedding-inference'));
  expect((await config('churn-prediction'))['featureAddr']).toBe(portOf('feature'));
  // The README's table and hand-run commands say the same.
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  served.forEach((name, i) =>
    expect(readme).toContain(`| ${name} | ${String(grpcPorts[i])} | ${String(metricsPorts[i])} |`),
  );
});
