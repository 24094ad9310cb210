import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

export interface TestPki {
  readonly dir: string;
  readonly caFile: string;
  /** Server certificate for `localhost` and 127.0.0.1. */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Client certificate (CN `aisle-client`) signed by the same CA. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** A second CA with its own client pair: certificates the servers must refuse. */
  readonly rogueCaFile: string;
  readonly rogueClientCertFile: string;
  readonly rogueClientKeyFile: string;
  /**
   * Issues another client certificate from the same CA, with this CN and DNS name (a service's identity);
   * `expired`: one whose validity ended yesterday (a certificate that was good once).
   */
  issueClient(name: string, opts?: { expired?: boolean }): { certFile: string; keyFile: string };
}

type Pair = { cert: forge.pki.Certificate; key: forge.pki.rsa.KeyPair };

let serial = 1;

function issue(
  subjectCn: string,
  issuer: Pair | undefined,
  ext: { ca?: boolean; server?: boolean; client?: boolean; dns?: string; expired?: boolean },
): Pair {
  // 2048-bit keys take ~1 s each in pure JS; 1024 is plenty for a test that never leaves the machine.
  const key = forge.pki.rsa.generateKeyPair({ bits: 1024 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = key.publicKey;
  cert.serialNumber = (serial++).toString(16).padStart(2, '0');
  cert.validity.notBefore = new Date(Date.now() - (ext.expired ? 2 * 24 * 3600_000 : 60_000));
  cert.validity.notAfter = new Date(Date.now() + (ext.expired ? -1 : 1) * 24 * 3600_000);
  cert.setSubject([{ name: 'commonName', value: subjectCn }]);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : [{ name: 'commonName', value: subjectCn }]);
  const extensions: object[] = [{ name: 'basicConstraints', cA: Boolean(ext.ca), critical: true }];
  if (ext.ca) extensions.push({ name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true });
  else extensions.push({ name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true });
  if (ext.server || ext.client)
    extensions.push({ name: 'extKeyUsage', serverAuth: Boolean(ext.server), clientAuth: Boolean(ext.client) });
  if (ext.server)
    extensions.push({
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    });
  if (ext.dns && !ext.server) extensions.push({ name: 'subjectAltName', altNames: [{ type: 2, value: ext.dns }] });
  cert.setExtensions(extensions);
  cert.sign(issuer ? issuer.key.privateKey : key.privateKey, forge.md.sha256.create());
  return { cert, key };
}

/** A throwaway CA with server and client certificates, written as PEM files to a temporary folder. */
export function generateTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'aisle-pki-'));
  const write = (name: string, pem: string) => {
    const path = join(dir, name);
    writeFileSync(path, pem, { mode: 0o600 });
    return path;
  };
  const certPem = (p: Pair) => forge.pki.certificateToPem(p.cert);
  const keyPem = (p: Pair) => forge.pki.privateKeyToPem(p.key.privateKey);

  const ca = issue('aisle-test-ca', undefined, { ca: true });
  const server = issue('localhost', ca, { server: true });
  const client = issue('aisle-client', ca, { client: true });
  const rogueCa = issue('rogue-ca', undefined, { ca: true });
  const rogueClient = issue('aisle-client', rogueCa, { client: true });
  return {
    dir,
    caFile: write('ca.pem', certPem(ca)),
    serverCertFile: write('server.pem', certPem(server)),
    serverKeyFile: write('server-key.pem', keyPem(server)),
    clientCertFile: write('client.pem', certPem(client)),
    clientKeyFile: write('client-key.pem', keyPem(client)),
    rogueCaFile: write('rogue-ca.pem', certPem(rogueCa)),
    rogueClientCertFile: write('rogue-client.pem', certPem(rogueClient)),
    rogueClientKeyFile: write('rogue-client-key.pem', keyPem(rogueClient)),
    issueClient(name, opts = {}) {
      const pair = issue(name, ca, { client: true, dns: `${name}.aisle.svc`, expired: opts.expired });
      const file = opts.expired ? `${name}-expired` : name;
      return { certFile: write(`${file}.pem`, certPem(pair)), keyFile: write(`${file}-key.pem`, keyPem(pair)) };
    },
  };
}
