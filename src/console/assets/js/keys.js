// API keys: list, make (the key is shown once), revoke.
Console.pages.keys = {
  title: "Keys",
  async render(main) {
    const { h, api, table, when } = Console;
    const listed = await api("GET", "/api/v1/keys");
    const shown = h("div", { role: "status" });
    const name = h("input", { id: "key-name", name: "name", required: true });
    const scopes = h("input", { id: "key-scopes", name: "scopes", placeholder: "jobs:write, files:write", required: true });
    const error = h("p", { class: "error", role: "alert" });
    const form = h("form", { class: "panel row", async onsubmit(event) {
      event.preventDefault();
      error.textContent = "";
      try {
        const made = await api("POST", "/api/v1/keys", { name: name.value, scopes: scopes.value.split(",").map((s) => s.trim()).filter(Boolean) });
        shown.replaceChildren(h("div", { class: "panel" }, h("p", {}, "The key, shown this once:"), h("pre", {}, made.key)));
        name.value = ""; scopes.value = "";
        const list = await api("GET", "/api/v1/keys");
        tableHolder.replaceChildren(render(list.keys));
      } catch (problem) {
        error.textContent = problem.message;
      }
    } },
      h("div", {}, h("label", { for: "key-name" }, "Name"), name),
      h("div", {}, h("label", { for: "key-scopes" }, "Scopes"), scopes),
      h("button", { type: "submit" }, "Make a key"), error);
    const render = (keys) => table([
      { title: "Name", cell: (k) => k.name },
      { title: "Prefix", cell: (k) => h("code", {}, k.prefix) },
      { title: "Scopes", cell: (k) => k.scopes.join(", ") },
      { title: "Made", cell: (k) => when(k.created_at) + (k.created_by ? " by " + k.created_by : "") },
      { title: "Last used", cell: (k) => when(k.last_used_at) || "never" },
      { title: "State", cell: (k) => (k.revoked_at ? "revoked " + when(k.revoked_at) : k.expires_at ? "expires " + when(k.expires_at) : "active") },
      { title: "", cell: (k) => k.revoked_at ? "" : h("button", { class: "quiet", async onclick() {
          if (!confirm("Revoke " + k.name + "? Every caller using it stops within a second.")) return;
          await api("DELETE", "/api/v1/keys/" + encodeURIComponent(k.prefix));
          Console.refresh();
        } }, "Revoke") },
    ], keys);
    const tableHolder = h("div", { class: "panel" }, render(listed.keys));
    main.replaceChildren(h("h1", {}, "API keys"), form, shown, tableHolder);
  },
};
