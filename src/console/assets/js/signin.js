// The sign-in page: the admin token or an API key, traded for an HttpOnly session cookie.
// The token is sent once and kept nowhere in the page.
Console.signIn = function (root, done) {
  const { h, api, session } = Console;
  const error = h("p", { class: "error", role: "alert" });
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "panel signin", onsubmit: submit },
    h("h1", {}, "Switchyard console"),
    h("label", { for: "token" }, "Admin token or API key"),
    input,
    h("div", { class: "row gap-top" }, h("button", { type: "submit" }, "Sign in")),
    error);
  root.replaceChildren(h("main", {}, form));
  input.focus();
  performance.mark("console:signin");

  async function submit(event) {
    event.preventDefault();
    error.textContent = "";
    try {
      const signed = await api("POST", "/console/session", { token: input.value });
      input.value = "";
      Object.assign(session, { csrf: signed.csrf_token, holder: signed.holder, scopes: signed.scopes });
      done();
    } catch (problem) {
      error.textContent = problem.status === 401 ? "That token does not open the console." : problem.message;
    }
  }
};
