import { Lifecycle } from './lifecycle';
import { memoryLogger } from './logger';

test('runs hooks in reverse order, continues past failures and honours the deadline', async () => {
  const logger = memoryLogger();
  const life = new Lifecycle(logger, 300);
  const order: string[] = [];
  life.onShutdown('telemetry', () => void order.push('telemetry'));
  life.onShutdown('store', () => {
    order.push('store');
    throw new Error('close failed');
  });
  life.onShutdown('stuck', () => new Promise<void>(() => order.push('stuck')));
  life.onShutdown('grpc', async () => void order.push('grpc'));
  const started = Date.now();
  await Promise.all([life.shutdown('test'), life.shutdown('again')]);
  expect(order).toEqual(['grpc', 'stuck', 'store', 'telemetry']);
  expect(Date.now() - started).toBeLessThan(1000);
  const failed = logger.lines.filter((l) => l['msg'] === 'shutdown step failed').map((l) => l['step']);
  expect(failed).toEqual(['stuck', 'store']);
});
