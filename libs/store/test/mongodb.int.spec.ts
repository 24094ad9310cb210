import { openStore } from '../src';
import { describeStoreContract } from './store.contract';

// No MongoDB server can run on the build machines: this suite runs wherever MONGODB_URL points at one
// (a replica set, for transactions), e.g. MONGODB_URL=mongodb://localhost:27017/?replicaSet=rs0.
const url = process.env['MONGODB_URL'];
if (url) {
  let n = 0;
  describeStoreContract('mongodb', () => {
    const u = new URL(url);
    u.pathname = `/aisle_contract_${process.pid}_${Date.now()}_${n++}`;
    return openStore(u.toString());
  });
} else {
  // Written to stderr directly: jest does not show console output of suites whose tests are all skipped.
  process.stderr.write(
    '\nSKIPPED: MongoDB store contract suite (MONGODB_URL is not set; no MongoDB server on this machine)\n',
  );
  describe.skip('store contract: mongodb (skipped: MONGODB_URL not set)', () => {
    test('needs MONGODB_URL', () => undefined);
  });
}
