// Who is signed in (GET /me, kept in memory only: the session cookie is HttpOnly, so the page
// never sees it), the CSRF token every state-changing request sends, and the project chosen in
// the header's switcher (kept in localStorage; "" = all projects).

const PROJECT_KEY = "descent.project";

let me = null;
const listeners = [];

// `value`: /me's answer (or the sign-in answer), null once signed out.
export function setMe(value) {
  me = value;
  for (const listener of listeners) listener(me);
}

export function onChange(listener) {
  listeners.push(listener);
}

export function current() {
  return me;
}

export function csrfToken() {
  return me ? me.csrf_token : null;
}

// The chosen project's id, or null for all projects (also when the stored one is no longer
// among the user's projects).
export function project() {
  const stored = Number(localStorage.getItem(PROJECT_KEY));
  if (!me || !stored) return null;
  return me.projects.some((p) => p.id === stored) ? stored : null;
}

export function setProject(id) {
  if (id) localStorage.setItem(PROJECT_KEY, String(id));
  else localStorage.removeItem(PROJECT_KEY);
}

// Where #/login sends the user back to after signing in: a route of this dashboard, never the
// login page itself.
export function returnRoute(next) {
  return next && next.startsWith("/") && !next.startsWith("/login") ? `#${next}` : "#/experiments";
}
