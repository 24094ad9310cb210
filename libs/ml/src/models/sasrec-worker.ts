import { parentPort, workerData } from 'node:worker_threads';
import { SharedGradientExchange } from '../nn/gradient-exchange';
import { initBackend, tf } from '../nn/backend';
import { Sasrec } from './sasrec';
import {
  unflatten,
  type SasrecWorkerData,
  type SasrecWorkerMessage,
  type SasrecWorkerRequest,
} from './sasrec-parallel';
import { trainEpoch } from './sasrec-training';

/** Entry of one data-parallel training replica (see sasrec-parallel.ts). */
async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('sasrec-worker must run in a worker thread');
  const data = workerData as SasrecWorkerData;
  await initBackend({});
  const model = new Sasrec(data.numItems, data.cfg);
  const replica = {
    rank: data.rank,
    count: data.replicas,
    exchange: new SharedGradientExchange(data.buffer, data.rank, data.replicas, data.sizes),
  };
  let optimizer = tf.train.adam(data.cfg.learningRate);
  const send = (m: SasrecWorkerMessage) => port.postMessage(m);
  const handle = async (req: SasrecWorkerRequest): Promise<unknown> => {
    switch (req.op) {
      case 'setWeights':
        model.setWeightArrays(req.weights);
        return undefined;
      case 'getWeights':
        return model.weightArrays();
      case 'resetOptimizer':
        optimizer.dispose();
        optimizer = tf.train.adam(req.learningRate);
        return undefined;
      case 'epoch':
        return trainEpoch(
          model,
          optimizer,
          unflatten(req.flat, req.offsets),
          req.spec,
          data.rank === 0 ? (report) => send({ op: 'step', report }) : undefined,
          replica,
        );
    }
  };
  // Requests arrive one at a time (the pool waits for each answer), so a plain chain keeps them in order.
  let chain = Promise.resolve();
  port.on('message', (req: SasrecWorkerRequest) => {
    chain = chain.then(async () => {
      try {
        send({ id: req.id, ok: true, result: await handle(req) });
      } catch (err) {
        send({ id: req.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    });
  });
  send({ op: 'ready' });
}

void main();
