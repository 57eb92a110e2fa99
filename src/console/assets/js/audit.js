// The audit log, newest first, filtered by actor, action or resource type, in pages.
Console.pages.audit = {
  title: "Audit",
  async render(main, arg) {
    const { h, api, table, when } = Console;
    const params = new URLSearchParams(arg || "");
    const query = new URLSearchParams({ limit: "50" });
    for (const key of ["actor", "action", "resource_type", "cursor"]) if (params.get(key)) query.set(key, params.get(key));
    const page = await api("GET", "/api/v1/audit?" + query);
    const labels = { actor: "Actor", action: "Action", resource_type: "Resource type" };
    const inputs = Object.fromEntries(["actor", "action", "resource_type"].map((key) =>
      [key, h("input", { id: "audit-" + key, name: key, value: params.get(key) || "" })]));
    const filter = h("form", { class: "panel row", onsubmit(event) {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const [key, input] of Object.entries(inputs)) if (input.value.trim()) next.set(key, input.value.trim());
      location.hash = "#/audit/" + encodeURIComponent(next.toString());
    } },
      Object.entries(inputs).map(([key, input]) => h("div", {}, h("label", { for: input.id }, labels[key]), input)),
      h("button", { type: "submit" }, "Filter"));
    const next = () => {
      const p = new URLSearchParams(params);
      p.set("cursor", page.next_cursor);
      location.hash = "#/audit/" + encodeURIComponent(p.toString());
    };
    main.replaceChildren(
      h("h1", {}, "Audit log"),
      filter,
      h("div", { class: "panel" }, table([
        { title: "When", cell: (e) => when(e.time) },
        { title: "Actor", cell: (e) => e.actor || "" },
        { title: "Action", cell: (e) => e.action },
        { title: "Resource", cell: (e) => [e.resource_type, e.resource_id].filter(Boolean).join(" ") },
        { title: "Details", cell: (e) => h("pre", {}, JSON.stringify(e.metadata)) },
      ], page.entries),
        page.next_cursor ? h("div", { class: "row gap-top" }, h("button", { class: "quiet", onclick: next }, "Older")) : null));
  },
};
