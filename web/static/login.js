// Sign in (#/login, #/login?next=/experiments/3, #/login?error=link): a username and password
// form (POST /auth/login starts a session: an HttpOnly cookie, and the CSRF token kept in
// memory), then back to where the user was.  `error=link` is where a spent sign-in link lands.

import * as api from "./api.js";
import { h } from "./forms.js";
import * as session from "./session.js";


export async function render(root, params) {
  const error = h("p", { class: "login-error", id: "login-error", role: "alert" });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { id: "login-form", class: "card login" },
    h("h1", {}, "Sign in to Descent"),
    params.get("error") === "link" ? h("p", { class: "notice", id: "login-notice" },
      "This sign-in link was already used or has expired. Sign in with your password, or run ",
      h("code", {}, "descent up"), " again for a fresh link.") : null,
    h("label", {}, h("span", { class: "field-name" }, "username"),
      h("input", { name: "username", autocomplete: "username", required: true, autofocus: true })),
    h("label", {}, h("span", { class: "field-name" }, "password"),
      h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    error,
    button,
    h("p", { class: "muted hint" }, "No password yet? ", h("code", {}, "descent user set-password NAME"),
      " sets one; ", h("code", {}, "descent up"), " prints a one-time sign-in link at every start."));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      const me = await api.login(form.elements.username.value, form.elements.password.value);
      session.setMe(me);
      location.hash = session.returnRoute(params.get("next"));
    } catch (failure) {
      if (!(failure instanceof api.ApiError)) throw failure;
      error.textContent = failure.status === 401 ? "Wrong username or password." : failure.message;
      form.elements.password.select();
    } finally {
      button.disabled = false;
    }
  });
  root.replaceChildren(form);
  form.elements.username.focus();
}
