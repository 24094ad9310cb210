export * from './config';
export * from './logger';
export * from './telemetry';
export * from './metrics';
export * from './grpc';
export * from './nats';
export * from './lifecycle';
export * from './service';
