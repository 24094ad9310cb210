import {
  authenticate,
  hashPassword,
  mayOperate,
  mayRead,
  maySeeTenantOf,
  parseAccessFile,
  resolveCaller,
  SessionSigner,
  verifyPassword,
} from './access';

const declared = ['shop-a', 'shop-b', 'shop-c'];
const access = parseAccessFile({
  users: [{ name: 'alice', passwordHash: hashPassword('correct horse') }],
  grants: [
    { subject: 'user:alice', tenants: ['shop-a'], role: 'viewer' },
    { subject: 'group:platform', tenants: ['*'], role: 'operator' },
    { subject: 'user:bob', tenants: ['shop-b', 'not-declared'], role: 'operator' },
  ],
});

describe('access', () => {
  it('gives a caller only the declared tenants its grants name, with the strongest role', () => {
    const alice = resolveCaller(access, declared, 'alice', []);
    expect(alice).toMatchObject({ tenants: ['shop-a'], role: 'viewer', allTenants: false });
    expect(mayRead(alice, 'shop-a')).toBe(true);
    expect(mayRead(alice, 'shop-b')).toBe(false);
    expect(mayOperate(alice, 'shop-a')).toBe(false);
    const bob = resolveCaller(access, declared, 'bob', []);
    expect(bob.tenants).toEqual(['shop-b']);
    expect(mayOperate(bob, 'shop-b')).toBe(true);
    const ops = resolveCaller(access, declared, 'carol', ['platform']);
    expect(ops).toMatchObject({ tenants: declared, role: 'operator', allTenants: true });
    expect(resolveCaller(access, declared, 'mallory', []).tenants).toEqual([]);
  });

  it('shows input of unknown tenant only to callers allowed every tenant', () => {
    expect(maySeeTenantOf(resolveCaller(access, declared, 'alice', []), null)).toBe(false);
    expect(maySeeTenantOf(resolveCaller(access, declared, 'carol', ['platform']), null)).toBe(true);
  });

  it('checks passwords with scrypt and the same work for unknown users', () => {
    const hash = hashPassword('s3cret');
    expect(verifyPassword('s3cret', hash)).toBe(true);
    expect(verifyPassword('s3creT', hash)).toBe(false);
    expect(authenticate(access, 'alice', 'correct horse')).toBe(true);
    expect(authenticate(access, 'alice', 'wrong')).toBe(false);
    expect(authenticate(access, 'nobody', 'correct horse')).toBe(false);
  });

  it('refuses malformed access files naming the problem', () => {
    expect(() => parseAccessFile({ grants: [{ subject: 'alice', tenants: ['a'], role: 'viewer' }] })).toThrow(
      /grants\[0\]\.subject/,
    );
    expect(() => parseAccessFile({ users: [{ name: 'a', passwordHash: 'plain' }] })).toThrow(/scrypt/);
    expect(() => parseAccessFile({ grants: [{ subject: '*', tenants: ['a'], role: 'admin' }] })).toThrow(/role/);
  });

  it('signs sessions that expire and cannot be forged', () => {
    let now = 1_000;
    const signer = new SessionSigner('x'.repeat(32), 60_000, () => now);
    const token = signer.issue('alice');
    expect(signer.verify(token)).toBe('alice');
    const [payload] = token.split('.');
    const forged = `${Buffer.from(JSON.stringify({ u: 'admin', exp: 9e15 })).toString('base64url')}.${token.split('.')[1]}`;
    expect(signer.verify(forged)).toBeNull();
    expect(new SessionSigner('y'.repeat(32), 60_000, () => now).verify(token)).toBeNull();
    expect(signer.verify(`${payload}.`)).toBeNull();
    now += 60_001;
    expect(signer.verify(token)).toBeNull();
  });
});
