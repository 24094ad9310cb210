/** Keeps the docs true: each service README's environment table matches the service's config spec. */
import { describeConfig, type ConfigSpec } from '@aisle/runtime';
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
