import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { dirname, join } from 'node:path';

type Status = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** grpc.health.v1 Check, as a Kubernetes gRPC probe would call it. */
export function healthCheck(address: string, service = '', deadlineMs = 3000): Promise<Status> {
  const healthProto = join(
    dirname(require.resolve('grpc-health-check/package.json')),
    'proto',
    'health',
    'v1',
    'health.proto',
  );
  const pkg = grpc.loadPackageDefinition(loadSync(healthProto, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (
      client as unknown as {
        check: (
          req: { service: string },
          opts: grpc.CallOptions,
          cb: (err: grpc.ServiceError | null, res?: { status: Status }) => void,
        ) => void;
      }
    ).check({ service }, { deadline: Date.now() + deadlineMs }, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res?.status ?? 'UNKNOWN');
    });
  });
}

/** Service names listed by server reflection (grpc.reflection.v1), as grpcurl `list` shows them. */
export function listServicesByReflection(address: string, deadlineMs = 3000): Promise<string[]> {
  const proto = join(
    dirname(require.resolve('@grpc/reflection/package.json')),
    'build',
    'proto',
    'grpc',
    'reflection',
    'v1',
    'reflection.proto',
  );
  const pkg = grpc.loadPackageDefinition(loadSync(proto, { keepCase: true })) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.grpc.reflection.v1.ServerReflection(
    address,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    ServerReflectionInfo: (
      opts: grpc.CallOptions,
    ) => grpc.ClientDuplexStream<unknown, { list_services_response?: { service: Array<{ name: string }> } }>;
  };
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo({ deadline: Date.now() + deadlineMs });
    call.on('data', (res: { list_services_response?: { service: Array<{ name: string }> } }) => {
      resolve((res.list_services_response?.service ?? []).map((s) => s.name).sort());
      call.end();
      client.close();
    });
    call.on('error', (err) => {
      client.close();
      reject(err);
    });
    call.write({ list_services: '' });
  });
}
