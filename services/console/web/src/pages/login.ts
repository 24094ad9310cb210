import { errorMessage, postJson } from '../api';
import { field, h, notice, replace } from '../dom';

export function loginPage(main: HTMLElement, done: () => Promise<void>): () => void {
  const user = h('input', { type: 'text', name: 'user', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const status = h('div', {});
  const form = h(
    'form',
    {
      class: 'login',
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        replace(status);
        postJson('/api/login', { user: user.value, password: password.value })
          .then(done)
          .catch((err: unknown) => replace(status, notice('error', errorMessage(err))));
      },
    },
    field('User name', user),
    field('Password', password),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    status,
  );
  replace(
    main,
    h(
      'div',
      { class: 'login-box' },
      h('h1', {}, 'Sign in'),
      h('p', {}, 'The Aisle console needs a login outside local development.'),
      form,
    ),
  );
  user.focus();
  return () => undefined;
}
