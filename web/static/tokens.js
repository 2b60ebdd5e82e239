// API tokens (#/tokens): the signed-in user's tokens (never their secrets: a name and the first
// characters), a form to create one (its secret shown once, with a copy button) and revoke.

import * as api from "./api.js";
import { clearErrors, field, h, readFields, showErrors } from "./forms.js";

const when = (t) => (t ? new Date(t).toLocaleString() : "–");

function tokenRow(token, onRevoke) {
  const revoked = Boolean(token.revoked_at);
  const expired = !revoked && token.expires_at && new Date(token.expires_at) <= new Date();
  const state = revoked ? `revoked ${when(token.revoked_at)}` : expired ? "expired" : "live";
  return h("tr", { dataset: { id: token.id, state: revoked ? "revoked" : expired ? "expired" : "live" } },
    h("td", {}, token.name, token.kind === "worker" ? h("small", { class: "muted" }, " (worker)") : null),
    h("td", {}, h("code", {}, `${token.prefix}…`)),
    h("td", { class: "muted" }, when(token.created_at)),
    h("td", { class: "muted" }, token.expires_at ? when(token.expires_at) : "never"),
    h("td", { class: "muted" }, when(token.last_used_at)),
    h("td", { class: `token-state ${revoked || expired ? "bad" : ""}` }, state),
    h("td", {}, revoked ? null : h("button", { class: "revoke", onclick: () => onRevoke(token) }, "Revoke")));
}

// The secret of a token just created: shown this once.
function secretCard(created) {
  const secret = h("code", { id: "new-token-secret" }, created.token);
  const copied = h("span", { class: "muted", role: "status" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.token);
      copied.textContent = "copied";
    } catch {
      const range = document.createRange(); // no clipboard access: select it for Ctrl-C
      range.selectNodeContents(secret);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copied.textContent = "selected: press Ctrl-C to copy";
    }
  };
  return h("div", { class: "card new-token", id: "new-token" },
    h("h2", {}, `Token “${created.name}” created`),
    h("p", { class: "secret" }, secret, " ", h("button", { type: "button", id: "copy-token", onclick: copy }, "Copy"), " ", copied),
    h("p", { class: "notice" }, "Copy it now: it will not be shown again. ",
      "Send it as ", h("code", {}, "Authorization: Bearer <token>"), ", or pass it to ",
      h("code", {}, "descent login"), " / ", h("code", {}, "DESCENT_TOKEN"), "."));
}

export async function render(root) {
  const tbody = h("tbody", {});
  const count = h("p", { class: "muted", id: "tokens-count" });
  const fresh = h("div", { id: "new-token-slot" });

  const revoke = async (token) => {
    if (!confirm(`Revoke the token “${token.name}” (${token.prefix}…)? Whatever uses it stops working at once.`)) return;
    await api.revokeToken(token.id);
    if (fresh.dataset.id === String(token.id)) { fresh.replaceChildren(); delete fresh.dataset.id; }
    await refresh();
  };
  const refresh = async () => {
    const tokens = await api.listTokens();
    tbody.replaceChildren(...tokens.slice().reverse().map((t) => tokenRow(t, revoke)));
    const live = tokens.filter((t) => !t.revoked_at).length;
    count.textContent = `${tokens.length} token${tokens.length === 1 ? "" : "s"}, ${live} not revoked`;
  };

  const form = h("form", { id: "create-token", novalidate: true },
    h("div", { class: "grid" },
      field("name", "name", { type: "string", description: "What it is for, e.g. laptop or CI." }, ""),
      field("expires_in_days", "expires in (days)", { type: "integer", minimum: 1, maximum: 3650, nullable: true,
        description: "Empty: it never expires." }, null)),
    h("div", { class: "form-errors", role: "alert" }),
    h("button", { type: "submit", class: "primary" }, "Create token"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = readFields(form);
    const body = { name: values.name || "", expires_in_days: values.expires_in_days ?? null };
    try {
      const created = await api.createToken(body);
      fresh.replaceChildren(secretCard(created));
      fresh.dataset.id = String(created.id);
      form.reset();
    } catch (error) {
      if (!(error instanceof api.ApiError)) throw error;
      showErrors(form, error.detail);
      return;
    }
    await refresh();
  });

  await refresh();
  root.replaceChildren(
    h("h1", {}, "API tokens"),
    h("p", { class: "muted" }, "Scripts, the CLI and the Python client sign in with a token. ",
      "Only its first characters are kept visible; the api stores a hash of it."),
    fresh,
    h("div", { class: "card" }, h("h2", {}, "Create a token"), form),
    h("div", { class: "card" }, h("h2", {}, "Your tokens"), count,
      h("div", { class: "scroll" }, h("table", { class: "list", id: "tokens-table" },
        h("thead", {}, h("tr", {}, ["name", "token", "created", "expires", "last used", "state", ""].map((t) => h("th", {}, t)))),
        tbody))));
}
