/**
 * Prints a password hash for the console's access file:
 *   node services/console/dist/hash-password.cli.js   (reads the password from standard input)
 */
import { hashPassword } from './access';

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c: string) => (input += c));
process.stdin.on('end', () => {
  const password = input.replace(/\r?\n$/, '');
  if (!password) {
    process.stderr.write('give the password on standard input\n');
    process.exit(2);
  }
  process.stdout.write(`${hashPassword(password)}\n`);
});
