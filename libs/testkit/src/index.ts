export * from './nats-server';
export * from './service-process';
export * from './wire';
export * from './temp';
export * from './grpc-probes';
export * from './pki';
export * from './browser';
