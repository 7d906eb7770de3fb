// The live dashboard: follow the server's change events by fetching this page again and
// swapping its <main>; send the buttons' operations as POST with the page's token (a page of
// another origin can neither read the token nor send the header without a CORS preflight,
// which this server never grants).
(function () {
  'use strict';
  const token = document.querySelector('meta[name="rollout-runner-token"]').content;
  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    try {
      do {
        again = false;
        const answer = await fetch(location.pathname, { cache: 'no-store' });
        if (!answer.ok) break;
        const next = new DOMParser().parseFromString(await answer.text(), 'text/html');
        const main = next.querySelector('main');
        if (main) document.querySelector('main').replaceWith(main);
        document.title = next.title;
      } while (again);
    } finally {
      refreshing = false;
    }
  }
  document.addEventListener('DOMContentLoaded', function () {
    const events = new EventSource('/events');
    events.addEventListener('change', function () { refresh(); });
    document.addEventListener('click', async function (event) {
      const button = event.target.closest('button[data-action]');
      if (!button) return;
      button.disabled = true;
      const result = document.getElementById('action-result');
      const answer = await fetch(button.dataset.action, {
        method: 'POST',
        headers: { 'X-Rollout-Runner-Token': token },
      });
      result.textContent = (await answer.text()).trim();
      result.className = answer.ok ? 'ok' : 'failed';
      refresh();
    });
  });
})();
