/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } },
    ],
  },
  moduleNameMapper: {
    '^@aisle/(contracts|runtime|store|testkit|datagen|ml|ranking-core|experiments)$': '<rootDir>/libs/$1/src/index.ts',
    '^@aisle/local-stack$': '<rootDir>/deploy/local/src/index.ts',
  },
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  testTimeout: 60_000,
  maxWorkers: 2,
  setupFiles: ['<rootDir>/jest.setup.js'],
};
