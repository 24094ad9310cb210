// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const boundaries = (patterns) => ['error', { patterns }];
const noServices = {
  group: [
    '@aisle/ingest',
    '@aisle/feature',
    '@aisle/ranking',
    '@aisle/churn-prediction',
    '@aisle/embedding-inference',
    '@aisle/trainer',
    '**/services/**',
    '../../*/src/**',
  ],
  message: 'libraries never import services, and services never import each other',
};
// What domain code (a service's domain files, the ranking core) never imports.
const transportStorageRuntime = [
  '@aisle/runtime',
  '@aisle/store',
  '@grpc/*',
  '@nats-io/*',
  'mongodb',
  'better-sqlite3',
  'onnxruntime-node',
];
// Composition roots and adapters may touch transport, storage and runtime; domain files may not.
const adapterFiles = [
  'services/*/src/main.ts',
  'services/*/src/app.ts',
  'services/*/src/config.ts',
  'services/*/src/**/*.grpc.ts',
  'services/*/src/**/*.nats.ts',
  'services/*/src/**/*.store.ts',
  'services/*/src/**/*.ort.ts',
  'services/*/src/**/*.http.ts',
  'services/*/src/**/*.cli.ts',
  'services/*/src/cli.ts',
  'services/*/src/**/*.job.ts',
];

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      'libs/contracts/src/gen/**',
      '**/*.js',
      '**/*.mjs',
      'coverage/**',
      '.aisle/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        project: ['./tsconfig.json', './services/console/web/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/require-await': 'off',
      'no-console': 'error',
    },
  },
  // TF.js's generic typings need assertions that this rule would rather see as type arguments.
  {
    files: ['libs/ml/**/*.ts'],
    rules: { '@typescript-eslint/no-unnecessary-type-assertion': 'off' },
  },
  // Architecture boundaries (ARCHITECTURE.md "Boundaries"). Later blocks replace the rule of earlier
  // ones for the same files, so each block lists every pattern that applies to its files.
  {
    files: ['libs/*/src/**/*.ts'],
    rules: { 'no-restricted-imports': boundaries([noServices]) },
  },
  {
    files: ['libs/contracts/src/**/*.ts'],
    rules: {
      'no-restricted-imports': boundaries([{ group: ['@aisle/*'], message: 'contracts imports nothing of ours' }]),
    },
  },
  {
    files: ['libs/store/src/**/*.ts', 'libs/ml/src/**/*.ts'],
    rules: {
      'no-restricted-imports': boundaries([
        noServices,
        {
          group: ['@aisle/runtime', '@aisle/store', '@grpc/*', '@nats-io/*'],
          message: 'no transport in storage or models; ml reads data sets, not the database',
        },
      ]),
    },
  },
  // The ranking core is domain code shared by the ranking service and the trainer's evaluator: it meets
  // the world only through its ports.
  {
    files: ['libs/ranking-core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': boundaries([
        noServices,
        {
          group: [...transportStorageRuntime, '@aisle/testkit'],
          message: 'the ranking core imports no transport, storage or runtime: implement a port in an adapter',
        },
      ]),
    },
  },
  {
    files: ['services/*/src/**/*.ts'],
    rules: { 'no-restricted-imports': boundaries([noServices]) },
  },
  {
    files: ['services/*/src/**/*.ts'],
    ignores: adapterFiles,
    rules: {
      'no-restricted-imports': boundaries([
        noServices,
        {
          group: transportStorageRuntime,
          message:
            'domain code imports no transport, storage or runtime packages; wire them in main.ts or an adapter file',
        },
      ]),
    },
  },
  {
    files: ['**/*.spec.ts', '**/test/**/*.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
      'no-console': 'off',
    },
  },
);
